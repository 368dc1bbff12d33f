// Lint rules: typescript-eslint's recommended set, plus the import rules that
// keep workflow code deterministic and the layers apart (STYLE.md).
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const importX = require('eslint-plugin-import-x');

const nodeBuiltins = ['node:*', ...require('node:module').builtinModules.filter((name) => !name.startsWith('_'))];

/**
 * The layers of src/, lowest first. A unit (a folder of src/, or a file at its
 * top) imports from its own layer's units only where the layer says
 * `together`, and from the layers below it; never from a layer above. So the
 * arrows of the tree all point down: workflows ← activities ← media hosts ←
 * probing and pictures ← file-system rules ← library; the API → scans →
 * Temporal; and nothing imports the API but the process that serves it.
 */
const LAYERS = [
  { layer: 'plain modules: workflow-safe types and constants, configuration, errors, logging, metrics, the version', units: ['model', 'errors', 'config', 'logger', 'metrics', 'writable', 'version', 'worker-metrics'], together: true },
  { layer: 'the library database', units: ['library'] },
  { layer: 'file-system rules (containment, the walk, fingerprints) and the fences of every media reader', units: ['filesystem', 'media'] },
  { layer: 'probing and pictures, each on its own', units: ['probe', 'thumbnails'] },
  { layer: 'the media hosts, where probing and pictures meet', units: ['media-host'] },
  { layer: 'activities', units: ['activities'] },
  { layer: 'workflows', units: ['workflows'] },
  { layer: 'Temporal plumbing (client, servers, CLI)', units: ['temporal'] },
  { layer: 'the application: starting, reading, listing and scheduling scans', units: ['scans'] },
  { layer: 'the edges: the API, scanctl, the worker', units: ['api', 'cli', 'worker'] },
  { layer: 'process entries', units: ['main', 'worker-main'] },
];

/** Every folder of src/ that holds TypeScript, and every .ts file at its top, by name: each must have its layer. */
function unitsOfSrc() {
  const fs = require('node:fs');
  const path = require('node:path');
  const holdsTypeScript = (dir) =>
    fs.readdirSync(dir, { withFileTypes: true }).some((entry) => (entry.isDirectory() ? holdsTypeScript(path.join(dir, entry.name)) : entry.name.endsWith('.ts')));
  const src = path.join(__dirname, 'src');
  return fs
    .readdirSync(src, { withFileTypes: true })
    .filter((entry) => (entry.isDirectory() ? holdsTypeScript(path.join(src, entry.name)) : entry.name.endsWith('.ts')))
    .map((entry) => entry.name.replace(/\.ts$/, ''));
}
const unlayered = unitsOfSrc().filter((unit) => !LAYERS.some((l) => l.units.includes(unit)));
if (unlayered.length > 0) throw new Error(`src/${unlayered.join(', src/')}: in no layer; add to LAYERS in eslint.config.js`);

const escape = (name) => name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** One config per unit: the units it must not import, matched on relative import paths. */
const layerRules = LAYERS.flatMap(({ layer, units, together }, index) =>
  units.map((unit) => {
    const above = LAYERS.slice(index + 1).flatMap((l) => l.units);
    const peers = together ? [] : units.filter((other) => other !== unit);
    const banned = [...peers, ...above].map(escape).join('|');
    // A folder's files reach other units through `../`; a file at the top of src/ through `./`.
    const folder = { files: [`src/${unit}/**/*.ts`], regex: `^(\\.\\./)+(${banned})(/|$)` };
    const file = { files: [`src/${unit}.ts`], regex: `^\\./(${banned})(/|$)` };
    const message = `${unit} is in the layer of ${layer}: it imports only from the layers below it (see LAYERS in eslint.config.js).`;
    return banned === ''
      ? []
      : [folder, file].map(({ files, regex }) => ({ files, rules: { 'no-restricted-imports': ['error', { patterns: [{ regex, message }] }] } }));
  }),
).flat();

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
  ...layerRules,
  {
    // No import cycle anywhere in src/, type-only imports included.
    files: ['src/**/*.ts'],
    plugins: { 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [importX.createNodeResolver({ extensions: ['.ts', '.js', '.json'] })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
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
