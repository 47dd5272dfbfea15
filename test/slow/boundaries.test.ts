/**
 * The layer rules in eslint.config.js catch an upward import, and let a downward one through.
 * In the slow project: loading ESLint with the config (typescript-eslint, the TypeScript
 * resolver) takes most of a second.
 */
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
// @ts-expect-error eslint.config.js is plain JavaScript without declarations.
import { boundariesConfig } from '../../eslint.config.js';

async function lint(filePath: string, code: string): Promise<string[]> {
  const eslint = new ESLint({ overrideConfigFile: true, overrideConfig: [boundariesConfig as never] });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.ruleId ?? 'parse'}: ${m.message}`);
}

describe('layers only look down', () => {
  it('refuses the domain importing an adapter', async () => {
    // Act
    const messages = await lint(
      'lib/domain/upward.ts',
      "import { DynamoKeyStore } from '../adapters/dynamo-key-store.js';\nexport const x = DynamoKeyStore;\n",
    );
    // Assess
    expect(messages).toEqual([
      'boundaries/dependencies: There is no policy allowing dependencies from elements of type "domain" to elements of type "adapter"',
    ]);
  });

  it('refuses an entry point building an adapter instead of asking the wiring', async () => {
    const messages = await lint(
      'functions/upward.ts',
      "import { DynamoKeyStore } from '../lib/adapters/dynamo-key-store.js';\nexport const x = DynamoKeyStore;\n",
    );
    expect(messages).toEqual([
      'boundaries/dependencies: There is no policy allowing dependencies from elements of type "entry" to elements of type "adapter"',
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
