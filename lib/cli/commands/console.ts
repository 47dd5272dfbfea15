/** console: the read-only web page over the table, on 127.0.0.1, until Ctrl-C. */
import * as z from 'zod/mini';
import { DEFAULT_CONSOLE_PORT } from '../../config.js';
import { redact } from '../../shared/redact.js';
import { type Command, numberFlag, Refusal } from '../framework.js';

/** A TCP port; 0 asks for any free one. */
const Port = z.int().check(z.minimum(0), z.maximum(65_535));

/** Resolves on the first Ctrl-C or SIGTERM. */
function interrupted(): Promise<void> {
  return new Promise((done) => {
    process.once('SIGINT', () => done());
    process.once('SIGTERM', () => done());
  });
}

export const consoleCommand: Command = {
  name: 'console',
  summary: 'serve a read-only web page of the pools, their keys (masked) and the last maintenance runs on 127.0.0.1',
  usage: '[--port N]',
  help: [
    `--port N     the port on 127.0.0.1 (default ${DEFAULT_CONSOLE_PORT}; 0: any free port)`,
    'Views: every pool (policy, keys by status, usable keys and credits, usage counts against the cap),',
    "a pool's keys a page at a time (masked key, label, uses, status with who set it and why, cooling until,",
    'last used, credits), the maintenance runs of the last 30 days. Reads the same table as every other command;',
    'never a secret. Answers only requests addressed to 127.0.0.1, localhost or [::1]. Ctrl-C stops it.',
  ],
  options: { port: { type: 'string' } },
  async run({ args, io, services }) {
    const port = numberFlag(Port, args.values.port, '--port') ?? DEFAULT_CONSOLE_PORT;
    let running: { url: string; close(): Promise<void> };
    try {
      running = await services.console(port, (error) =>
        io.err(`keypool console: a read failed: ${redact(error instanceof Error ? error.message : String(error))}`),
      );
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE')
        throw new Refusal(`port ${port} is in use: choose another with --port`);
      throw error;
    }
    io.out(`keypool console at ${running.url}   (read-only; Ctrl-C stops it)`);
    await interrupted();
    await running.close();
    return 0;
  },
};
