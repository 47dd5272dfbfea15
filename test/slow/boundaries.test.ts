/**
 * The house plan's lint (eslint.config.js): the layer rules catch an upward import and let a
 * downward one through; the cycle rule refuses modules that import each other, type-only
 * imports included. In the slow project: loading ESLint with the config (typescript-eslint, the
 * TypeScript resolver) takes most of a second.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';
import { afterEach, describe, expect, it } from 'vitest';
// @ts-expect-error eslint.config.js is plain JavaScript without declarations.
import { boundariesConfig, noCycleConfig } from '../../eslint.config.js';

async function lint(filePath: string, code: string): Promise<string[]> {
  const eslint = new ESLint({
    overrideConfigFile: true,
    // The TypeScript parser, as for the tree: a port is imported as a type.
    overrideConfig: [{ languageOptions: { parser: tseslint.parser } }, boundariesConfig as never],
  });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

/** One upward import each: the file it is in, what it imports, and the two elements the lint names. */
const UPWARD: [why: string, file: string, imports: string, from: string, to: string][] = [
  [
    'the domain importing an adapter',
    'lib/domain/upward.ts',
    "import { DynamoKeyStore } from '../adapters/dynamo-key-store.js';",
    'domain',
    'adapter',
  ],
  [
    'an entry point building an adapter instead of asking the wiring',
    'functions/upward.ts',
    "import { DynamoKeyStore } from '../lib/adapters/dynamo-key-store.js';",
    'entry',
    'adapter',
  ],
  [
    'the domain importing a port: the rules know no I/O, not even its shape',
    'lib/domain/upward.ts',
    "import type { KeyStore } from '../ports/key-store.js';",
    'domain',
    'port',
  ],
  [
    'a use case importing an adapter instead of its port',
    'lib/use-cases/upward.ts',
    "import { DynamoPoolStore } from '../adapters/dynamo-pool-store.js';",
    'usecase',
    'adapter',
  ],
  [
    'lib/ importing an entry point: the local server is handed the handlers, it does not load them',
    'lib/local/upward.ts',
    "import { handler } from '../../functions/lease.js';",
    'local',
    'entry',
  ],
  [
    'observability importing a use case: the edge counts, nothing wraps a use case',
    'lib/observability/upward.ts',
    "import { Leasing } from '../use-cases/leasing.js';",
    'observability',
    'usecase',
  ],
  [
    "the client package importing the service's code: applications install it without the service",
    'clients/typescript/src/upward.ts',
    "import { NoUsableKey } from '../../../lib/domain/errors.js';",
    'package',
    'domain',
  ],
];

describe('layers only look down', () => {
  it.each(UPWARD)('refuses %s', async (_why, file, imports, from, to) => {
    // Act
    const messages = await lint(file, `${imports}\nexport const x = 1;\n`);
    // Assess
    expect(messages).toEqual([
      `boundaries/dependencies: There is no policy allowing dependencies from elements of type "${from}" to elements of type "${to}"`,
    ]);
  });

  it('lets an adapter import the domain', async () => {
    const messages = await lint(
      'lib/adapters/downward.ts',
      "import { isLeasable } from '../domain/rules.js';\nexport const x = isLeasable;\n",
    );
    expect(messages).toEqual([]);
  });
});

type Config = ESLint.Options['overrideConfig'];

let dir: string | undefined;

afterEach(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Writes `files` (path under lib/ -> source) into a fresh tree and lints the first with `config`. */
async function lintTree(files: Record<string, string>, config: Config = noCycleConfig as Config): Promise<string[]> {
  const root = mkdtempSync(join(tmpdir(), 'keypool-cycles-'));
  dir = root;
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), source);
  }
  const eslint = new ESLint({ cwd: root, overrideConfigFile: true, overrideConfig: config });
  const [result] = await eslint.lintFiles([Object.keys(files)[0] ?? '']);
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

const TYPE_CYCLE = {
  'lib/domain/a.ts': "import type { B } from './b.js';\nexport interface A {\n  b?: B;\n}\n",
  'lib/domain/b.ts': "import type { A } from './a.js';\nexport interface B {\n  a?: A;\n}\n",
};

describe('no import cycles', () => {
  it('refuses two modules that import each other only for types', async () => {
    // Act
    const messages = await lintTree(TYPE_CYCLE);
    // Assess
    expect(messages).toEqual(['keypool/no-cycle: Dependency cycle detected']);
  });

  it('refuses a cycle through a third module, naming the way back', async () => {
    const messages = await lintTree({
      'lib/domain/a.ts': "import { b } from './b.js';\nexport const a = (): number => b + 1;\n",
      'lib/domain/b.ts': "import { C } from './c.js';\nexport const b = 1;\nexport type BC = C;\n",
      'lib/domain/c.ts': "import type { a } from './a.js';\nexport type C = typeof a;\n",
    });
    expect(messages).toEqual(['keypool/no-cycle: Dependency cycle via "./c.js:1"']);
  });

  it('lets one module import another', async () => {
    const messages = await lintTree({
      'lib/domain/a.ts': "import type { B } from './b.js';\nexport interface A {\n  b?: B;\n}\n",
      'lib/domain/b.ts': 'export interface B {\n  n: number;\n}\n',
    });
    expect(messages).toEqual([]);
  });

  it("needs the wrapper: import-x's own no-cycle lets a cycle of type imports through", async () => {
    // Prepare: the same tree and settings, with the plugin's rule as it ships.
    const config = noCycleConfig as { plugins: unknown; rules: unknown };
    const plain = { ...config, plugins: { 'import-x': importX }, rules: { 'import-x/no-cycle': 'error' } };
    // Act
    const messages = await lintTree(TYPE_CYCLE, plain as Config);
    // Assess: if this fails, import-x learned to count type imports and the wrapper can go.
    expect(messages).toEqual([]);
  });
});
