#!/usr/bin/env node
// The `keypool` command: runs the bundled CLI (dist/cli/keypool.mjs, from bin/cli.ts),
// rebuilt first when a source changed, so `keypool` and `npm run keypool` run the same code.
import { DIST, ensureBuilt } from './build.js';

await ensureBuilt();
await import(DIST.cli);
