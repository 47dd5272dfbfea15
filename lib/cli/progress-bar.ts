/** A one-line progress bar on stderr for long CLI runs; the caller decides whether a terminal is there. */
import type { MigrationProgress } from '../use-cases/migration/migrate.js';

const WIDTH = 24;

function thousands(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export interface ProgressBar {
  update(progress: MigrationProgress): void;
  /** erases the bar so the report starts on a clean line */
  done(): void;
}

/** The bar on stderr for a long run, unless the report is JSON or either stream is not a terminal. */
export function terminalProgressBar(io: { isTTY: boolean }, asJson: boolean): ProgressBar | undefined {
  return !asJson && io.isTTY && process.stderr.isTTY ? progressBar((text) => process.stderr.write(text)) : undefined;
}

/** Redraws in place with `\r`: rows read, keys written, rows per second, and a bar when the size is known. */
export function progressBar(write: (text: string) => void, clock: () => number = Date.now): ProgressBar {
  const started = clock();
  let drawn = 0;
  return {
    update(p) {
      const seconds = Math.max((clock() - started) / 1000, 0.001);
      const share = p.totalBytes ? Math.min(1, p.bytes / p.totalBytes) : undefined;
      const bar =
        share === undefined
          ? ''
          : `[${'#'.repeat(Math.round(share * WIDTH)).padEnd(WIDTH, '-')}] ${String(Math.floor(share * 100)).padStart(3)}%  `;
      const line = `${bar}read ${thousands(p.read)}  written ${thousands(p.written)}  ${thousands(p.read / seconds)} rows/s`;
      write(`\r${line.padEnd(drawn)}`);
      drawn = line.length;
    },
    done() {
      if (drawn > 0) write(`\r${' '.repeat(drawn)}\r`);
      drawn = 0;
    },
  };
}
