/** End-to-end tests (slow: PyTorch cross-checks, CLI runs on real exports); run with `npm run test:e2e`. */
const base = require('./jest.config.js');

module.exports = {
  ...base,
  testMatch: ['<rootDir>/__tests__/e2e/**/*.test.ts'],
  testPathIgnorePatterns: ['/node_modules/'],
  testTimeout: 900000,
  // The cross-checks run PyTorch next to onnxruntime on the same cores: one test file at a time.
  maxWorkers: 1,
};
