/**
 * Jest: TypeScript through ts-jest, which transpiles each file alone (tsconfig.json's isolatedModules
 * makes ts-jest 29.4 use transpileModule: no type program, no diagnostics; `npm run typecheck` does the
 * type checking once). Measured on the 2-CPU machine: a cold transform cache adds ~5-10 s to the unit run.
 * Two projects:
 * - `unit`: every *.test.ts that is not *.e2e.test.ts, in-process (`npm run test:unit`, no build):
 *   855 tests in 80 files, 60 s wall with a cold cache and 49 s warm (was ~110-128 s before the split).
 *   Most of what is left is the indexer's own work (ingest, publish, sign) on temp channels.
 * - `e2e`: *.e2e.test.ts beside the module or in test/ and lambda-free-tools/test/: real processes
 *   (dpkg, bash scripts in a sandbox, sshd, nginx, apt-get, containers, killed children), the wall
 *   clock (rollbacks wait for the next second), and the Pulumi program evaluated many times. Some
 *   run dist/*.cjs: `npm run test:e2e` builds first.
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
