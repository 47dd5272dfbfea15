// @ts-check
import js from '@eslint/js';
import boundaries from 'eslint-plugin-boundaries';
import tseslint from 'typescript-eslint';

/**
 * The house plan (README "Project layout"): layers only look down. Each element may import
 * the elements listed beside it and nothing else of ours; packages are not checked here.
 * A new folder gets its line in the same commit.
 */
const LAYERS = {
  shared: [],
  domain: ['shared'],
  table: [],
  usecase: ['domain', 'shared'],
  observability: ['domain', 'usecase', 'shared'],
  adapter: ['domain', 'usecase', 'shared', 'table'],
  config: ['domain', 'table', 'shared'],
  http: ['domain', 'shared', 'observability'],
  cli: ['domain', 'usecase', 'shared', 'config'],
  client: ['domain', 'shared'],
  localtool: ['adapter', 'table'],
  wiring: ['adapter', 'config', 'domain', 'usecase', 'shared', 'cli'],
  entry: [
    'wiring',
    'http',
    'observability',
    'usecase',
    'domain',
    'shared',
    'config',
    'cli',
    'localtool',
    'table',
    'entry',
  ],
  infra: ['domain', 'table', 'http', 'observability', 'infra'],
};

/** Which files are which element: the first match wins, so single files come before their folders. */
const ELEMENTS = [
  { type: 'wiring', pattern: 'lib/wiring*.ts', mode: 'file' },
  { type: 'config', pattern: 'lib/config.ts', mode: 'file' },
  { type: 'table', pattern: 'lib/table.ts', mode: 'file' },
  { type: 'entry', pattern: 'lib/cli/main.ts', mode: 'file' },
  { type: 'entry', pattern: 'lib/cli/keypool.ts', mode: 'file' },
  { type: 'localtool', pattern: 'lib/local/dynamodb-local.ts', mode: 'file' },
  { type: 'shared', pattern: 'lib/shared' },
  { type: 'domain', pattern: 'lib/domain' },
  { type: 'usecase', pattern: 'lib/maintenance' },
  { type: 'usecase', pattern: 'lib/migration' },
  { type: 'observability', pattern: 'lib/observability' },
  { type: 'adapter', pattern: 'lib/adapters' },
  { type: 'http', pattern: 'lib/http' },
  { type: 'cli', pattern: 'lib/cli' },
  { type: 'client', pattern: 'lib/client' },
  { type: 'entry', pattern: 'lib/local' },
  { type: 'entry', pattern: 'functions' },
  { type: 'entry', pattern: 'bin' },
  { type: 'infra', pattern: 'infra' },
];

/** The layer rules as an ESLint config block; test/slow/boundaries.test.ts lints with it too. */
export const boundariesConfig = {
  files: ['lib/**/*.ts', 'functions/**/*.ts', 'infra/**/*.ts', 'bin/**/*.js'],
  plugins: { boundaries },
  settings: {
    // Our imports name `.js` files that are `.ts` in the tree: the TypeScript resolver maps them.
    'import/resolver': { typescript: { project: './tsconfig.json' } },
    'boundaries/elements': ELEMENTS,
    // `mode: 'file'` (the single-file elements above) is deprecated in v7 without a replacement
    // for one-file elements yet; it still works, so the warning is only noise.
    'boundaries/legacy-warnings': false,
  },
  rules: {
    'boundaries/dependencies': [
      'error',
      {
        default: 'disallow',
        // Same-element imports are always fine; unclassified files of ours are an error.
        checkUnknownLocals: true,
        policies: Object.entries(LAYERS).map(([from, to]) => ({
          from: { element: { type: from } },
          allow: { to: { element: { types: { anyOf: [from, ...to] } } } },
        })),
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.keypool/', 'coverage/', 'dist/'] },
  js.configs.recommended,
  ...tseslint.configs.strictTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true }],
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_' },
      ],
      // Stylistic: `() => server.close(done)` reads better than a braced block.
      '@typescript-eslint/no-confusing-void-expression': 'off',
    },
  },
  boundariesConfig,
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
