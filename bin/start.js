#!/usr/bin/env node
// `npm start`: runs the bundled local stack (dist/local/start.mjs, from bin/local-stack.ts),
// rebuilt first when a source changed.
import { DIST, ensureBuilt } from './build.js';

await ensureBuilt();
await import(DIST.start);
