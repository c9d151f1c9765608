/** Unit and integration tests; e2e tests (slow, CLI and browser) run with `npm run test:e2e`. */
module.exports = {
  testEnvironment: '<rootDir>/jest/ort-environment.js',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  testMatch: ['<rootDir>/__tests__/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/__tests__/e2e/'],
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60000,
  maxWorkers: 2,
  workerIdleMemoryLimit: '1GB',
};
