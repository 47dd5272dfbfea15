// @ts-check
import { join } from 'node:path';
import js from '@eslint/js';
import { createTypeScriptImportResolver } from 'eslint-import-resolver-typescript';
import boundaries from 'eslint-plugin-boundaries';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The house plan (README.md, "Project layout"): layers only look down. Each element may import
 * the elements listed beside it and nothing else of ours; packages are not checked here.
 * A new folder gets its line in the same commit.
 */
const LAYERS = {
  shared: [],
  domain: ['shared'],
  port: ['domain', 'shared'],
  table: ['domain'],
  usecase: ['port', 'domain', 'shared'],
  observability: ['domain', 'shared'],
  adapter: ['port', 'domain', 'shared', 'table'],
  config: ['domain', 'table', 'shared'],
  // The proxy route's edge (lib/http/proxy-edge.ts) hands its use case a call and a response sink: port types.
  http: ['domain', 'shared', 'observability', 'port'],
  // The local server's proxy route streams into a response sink (a port type) and takes the proxy's handle.
  local: ['http', 'shared', 'port'],
  // The console page: a primary adapter over the Overview use case, built by the wiring.
  console: ['usecase', 'domain', 'shared'],
  events: ['usecase', 'port', 'domain', 'shared'],
  cli: ['usecase', 'port', 'domain', 'shared', 'config'],
  // The broker key source binds a Broker to the client package and answers a domain error as
  // the HTTP API would (lib/http/errors.ts), in the package's classes.
  client: ['domain', 'shared', 'http', 'package'],
  // The client package applications install (clients/typescript): none of the service's code.
  package: [],
  // DynamoDB Local for npm start, the tests and the benchmarks, with its data dir's lock and its error.
  localtool: ['adapter', 'table', 'localtool'],
  wiring: ['adapter', 'config', 'usecase', 'port', 'domain', 'shared', 'observability', 'cli', 'console'],
  entry: [
    // the proxy's handle and response sink types (lib/ports/proxy-call.ts), which entry points pass to their server
    'port',
    'wiring',
    'http',
    'events',
    'observability',
    'usecase',
    'domain',
    'shared',
    'config',
    'cli',
    'local',
    'console',
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
  // lib/table.ts and lib/table-access.ts: the table's shape and who may touch which of its items.
  { type: 'table', pattern: 'lib/table*.ts', mode: 'file' },
  { type: 'localtool', pattern: 'lib/local/{dynamodb-local,data-dir-lock,local-stack-error}.ts', mode: 'file' },
  { type: 'shared', pattern: 'lib/shared' },
  { type: 'domain', pattern: 'lib/domain' },
  { type: 'port', pattern: 'lib/ports' },
  { type: 'usecase', pattern: 'lib/use-cases' },
  { type: 'observability', pattern: 'lib/observability' },
  { type: 'adapter', pattern: 'lib/adapters' },
  { type: 'http', pattern: 'lib/http' },
  { type: 'events', pattern: 'lib/events' },
  { type: 'cli', pattern: 'lib/cli' },
  { type: 'client', pattern: 'lib/client' },
  { type: 'local', pattern: 'lib/local' },
  { type: 'console', pattern: 'lib/console' },
  { type: 'entry', pattern: 'functions' },
  { type: 'entry', pattern: 'bin' },
  { type: 'infra', pattern: 'infra' },
  // Imported as `@keypool/client`, which tsconfig.json maps to its source.
  { type: 'package', pattern: 'clients/typescript/src' },
];

/** The layer rules as an ESLint config block; test/slow/boundaries.test.ts lints with it too. */
export const boundariesConfig = {
  files: ['lib/**/*.ts', 'functions/**/*.ts', 'infra/**/*.ts', 'bin/**/*.{js,ts}', 'clients/typescript/src/**/*.ts'],
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

/** A declaration as if it imported values: `import type` and `export type ... from` lose their mark. */
function asValueImport(node) {
  if (!('importKind' in node) && !('exportKind' in node)) return node;
  const specifiers = node.specifiers?.map((s) => ({ ...s, importKind: 'value', exportKind: 'value' }));
  return { ...node, importKind: 'value', exportKind: 'value', ...(specifiers ? { specifiers } : {}) };
}

/** The TypeScript parser, but every import and re-export reads as a value one (the cycle rule's view). */
const typesAsValuesParser = {
  meta: { name: 'keypool-types-as-values' },
  parseForESLint(code, options) {
    const parsed = tseslint.parser.parseForESLint(code, options);
    parsed.ast.body = parsed.ast.body.map(asValueImport);
    return parsed;
  },
};

/**
 * import-x's no-cycle, counting type-only imports: a cycle of types is still a knot in the plan
 * (the domain had two). The rule has no option for that (4.18 skips `import type` at the
 * importing line and in every module it walks), so it runs here on the tree with those marks
 * dropped: the importing declarations it is shown, and the modules it parses on its way (its
 * context's parser). Its messages and options are import-x's own.
 */
const noCycleCountingTypes = {
  meta: importX.rules['no-cycle'].meta,
  create(context) {
    const languageOptions = { ...context.languageOptions, parser: typesAsValuesParser };
    const view = Object.create(context, { languageOptions: { value: languageOptions } });
    const listeners = importX.rules['no-cycle'].create(view);
    return Object.fromEntries(
      Object.entries(listeners).map(([selector, listener]) => [selector, (node) => listener(asValueImport(node))]),
    );
  },
};

/** No import cycles, type-only imports included; test/slow/boundaries.test.ts lints with it too. */
export const noCycleConfig = {
  files: ['lib/**/*.ts', 'functions/**/*.ts', 'infra/**/*.ts', 'bin/**/*.{js,ts}', 'clients/typescript/src/**/*.ts'],
  languageOptions: { parser: tseslint.parser },
  plugins: { keypool: { rules: { 'no-cycle': noCycleCountingTypes } } },
  settings: {
    // Without .ts here the rule would not read our modules at all.
    'import-x/extensions': ['.ts', '.js'],
    // One lint run reads each module once: resolutions are kept for the run, not 30 s.
    'import-x/cache': { lifetime: '∞' },
    'import-x/resolver-next': [createTypeScriptImportResolver({ project: join(import.meta.dirname, 'tsconfig.json') })],
  },
  // Our modules only: a package's own graph (aws-cdk-lib's thousands of files) is not ours to untie.
  rules: { 'keypool/no-cycle': ['error', { ignoreExternal: true }] },
};

export default tseslint.config(
  { ignores: ['node_modules/', 'cdk.out/', '.keypool/', 'coverage/', 'dist/', 'clients/typescript/dist/'] },
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
  noCycleConfig,
  {
    files: ['**/*.js'],
    extends: [tseslint.configs.disableTypeChecked],
  },
);
