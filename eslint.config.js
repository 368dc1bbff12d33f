// Lint rules: typescript-eslint's recommended set, plus the import rules that
// keep workflow code deterministic and the layers apart (STYLE.md).
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');

const nodeBuiltins = ['node:*', ...require('node:module').builtinModules.filter((name) => !name.startsWith('_'))];

module.exports = tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.cache/**', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { require: 'readonly', module: 'writable', process: 'readonly', __dirname: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: nodeBuiltins, message: 'Workflow code must be deterministic: no Node built-ins.' },
            { group: ['../activities', '../activities/*'], message: 'Import activities as types only.', allowTypeImports: true },
            { group: ['execa', 'express', 'pino', 'better-sqlite3', 'pg', 'kysely', '../config', '../logger', '../library/*', '../probe/*', '../api/*'], message: 'Workflow code must not do I/O.' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/activities/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['../api', '../api/*', '../workflows/*'], message: 'Activities never import the API or workflows.', allowTypeImports: true }] }],
    },
  },
  {
    files: ['src/api/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': ['error', { patterns: [{ group: ['@temporalio/worker', '../activities', '../activities/*'], message: 'The API never imports the worker or activities.' }] }],
    },
  },
  {
    // The dashboard's browser script: a module, its names (DOM globals included) checked by tsc (tsconfig.dashboard.json).
    files: ['dashboard/**/*.js'],
    languageOptions: { sourceType: 'module' },
    rules: { 'no-undef': 'off' },
  },
  {
    files: ['test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.js', '*.js'],
    rules: { 'no-console': 'off', '@typescript-eslint/no-require-imports': 'off' },
  },
);
