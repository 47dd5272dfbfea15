/** The `keypool` program: runs one command line with the process's arguments and output, and sets the exit code. */
import type { CliIo } from '../lib/cli/framework.js';
import { runCli } from '../lib/cli/run-cli.js';
import { cliServices } from '../lib/wiring-secrets.js';

/** The process's own output streams. */
const processIo: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  isTTY: process.stdout.isTTY,
};

// A reader that goes away (`keypool list | head -1`) is not this command's failure: the rest of
// the output has nowhere to go, and the command ends with its own exit code, without a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code !== 'EPIPE') throw error;
});

// The SDK warns that its 2027 releases need Node 22; the Lambdas run Node 24, so on a laptop
// with Node 20 the warning is noise in every command's output.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
process.exitCode = await runCli(process.argv.slice(2), processIo, cliServices);
