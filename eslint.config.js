// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const rlpkd = require('./lint/no-transitive-import');

/**
 * House rules on who may load a runtime (DESIGN.md): only src/runtime/ imports onnxruntime-node; only
 * src/runtime/ and src/web/ import onnxruntime-web; src/onnx/ and src/autodiff/ import no runtime at all,
 * not even types; nothing src/web/ imports reaches onnxruntime-node or sharp. One config object per folder group,
 * because a later `no-restricted-imports` entry replaces an earlier one instead of adding to it.
 */
const ORT_NODE = {
  name: 'onnxruntime-node',
  message: 'only src/runtime/ loads onnxruntime-node; use the GraphSession interface from src/runtime/',
};
const ORT_WEB = {
  name: 'onnxruntime-web',
  message: 'only src/runtime/ and src/web/ load onnxruntime-web',
};
const NO_RUNTIME = {
  group: ['**/runtime', '**/runtime/**'],
  message: 'src/onnx/ and src/autodiff/ transform graphs and know nothing about a runtime',
};
const importRules = [
  {
    files: ['src/**/*.ts'],
    ignores: ['src/runtime/**', 'src/web/**', 'src/onnx/**', 'src/autodiff/**'],
    rules: { 'no-restricted-imports': ['error', { paths: [ORT_NODE, ORT_WEB] }] },
  },
  {
    files: ['src/onnx/**/*.ts', 'src/autodiff/**/*.ts'],
    rules: { 'no-restricted-imports': ['error', { paths: [ORT_NODE, ORT_WEB], patterns: [NO_RUNTIME] }] },
  },
  {
    files: ['src/web/**/*.ts'],
    plugins: { rlpkd },
    rules: {
      'no-restricted-imports': ['error', { paths: [ORT_NODE] }],
      // The browser bundle: no native runtime, no image codec (DESIGN.md).
      'rlpkd/no-transitive-import': ['error', { modules: ['onnxruntime-node', 'sharp'] }],
    },
  },
];

module.exports = tseslint.config(
  {
    ignores: [
      'dist/',
      'node_modules/',
      'coverage/',
      'runs/',
      'datasets/',
      'web-bundle/',
      '**/*.js',
      '!src/**/*.js',
    ],
  },
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
  ...importRules,
);
