/**
 * Jest: TypeScript through ts-jest in transpile-only mode (`npm run typecheck` does the type checking once).
 * Two projects: `unit` (every *.test.ts that is not *.e2e.test.ts; `npm run test:unit`, no build: about two minutes, most of it
 * dpkg comparisons and plan scripts run in a sandbox)
 * and `e2e` (*.e2e.test.ts: real processes, sshd, nginx, apt-get, containers; they need `npm run build`).
 * `testTimeout` is a global option in jest 29, so each project sets its own default timeout in a setup
 * file (test/jest/timeout-*.js); a test that passes its own timeout keeps it.
 */
const shared = {
  testEnvironment: 'node',
  roots: ['<rootDir>/lambda-free-tools', '<rootDir>/infra', '<rootDir>/stacks', '<rootDir>/scripts', '<rootDir>/test'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
};

module.exports = {
  projects: [
    {
      ...shared,
      displayName: 'unit',
      testMatch: ['**/*.test.ts'],
      testPathIgnorePatterns: ['/node_modules/', '\\.e2e\\.test\\.ts$'],
      setupFilesAfterEnv: ['<rootDir>/test/jest/timeout-unit.js'],
    },
    {
      ...shared,
      displayName: 'e2e',
      testMatch: ['**/*.e2e.test.ts'],
      setupFilesAfterEnv: ['<rootDir>/test/jest/timeout-e2e.js'],
    },
  ],
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
