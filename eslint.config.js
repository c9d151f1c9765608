// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

module.exports = tseslint.config(
  { ignores: ['dist/', 'node_modules/', 'coverage/', 'runs/', 'datasets/', 'web-bundle/', '**/*.js', '!src/**/*.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', '__tests__/**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    // Library code logs through the logger; only the CLI and tools print directly.
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**', 'src/logging/**'],
    rules: { 'no-console': 'error' },
  },
);
