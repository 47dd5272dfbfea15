#!/usr/bin/env node
// The `keypool` command. lib/cli/main.ts only exports runCli; this file runs it. The TypeScript
// is run through tsx's loader, so a checkout needs no build step and `npm run keypool` and
// `keypool` run the same code.
import process from 'node:process';
import { register } from 'tsx/esm/api';

// The SDK warns that its 2027 releases need Node 22; the Lambdas run Node 24, so on a laptop
// with Node 20 the warning is noise in every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { runCli } = await import('../lib/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2));
