#!/usr/bin/env node
// The `keypool` command: runs the TypeScript CLI through tsx's loader, so the package needs
// no build step and `npm run keypool` and `keypool` run the same code.
import { register } from 'tsx/esm/api';

register();
await import('../lib/cli/main.ts');
