/** Jest: TypeScript through ts-jest in transpile-only mode (`npm run typecheck` does the type checking once). */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/lambda-free-tools', '<rootDir>/infra', '<rootDir>/stacks', '<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { diagnostics: false }] },
  testTimeout: 120000,
  maxWorkers: 2,
  reporters: ['default', '<rootDir>/test/summary-reporter.js'],
};
