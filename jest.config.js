/** Jest runs the TypeScript sources directly through swc; type-checking is `npm run typecheck`. */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest'] },
  globalSetup: '<rootDir>/test/support/global-setup.ts',
  globalTeardown: '<rootDir>/test/support/global-teardown.ts',
  testTimeout: 120_000,
  // Two test files at a time, each in its own process (its own worker, probe
  // hosts and API, on the run's one dev server): most of a file's time is spent
  // waiting on Temporal, processes and timers, which the other file fills.
  maxWorkers: 2,
};
