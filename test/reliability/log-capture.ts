/**
 * Captures every line this test process writes (stdout, stderr, console, the JSON logger,
 * and any child output fed in) so the suite can scan them all for every secret it used.
 * Installed when first imported, before anything else logs.
 */
import { expect } from 'vitest';

const lines: string[] = [];
const secrets = new Set<string>();

function keep(chunk: unknown): void {
  const text =
    typeof chunk === 'string'
      ? chunk
      : chunk instanceof Uint8Array
        ? Buffer.from(chunk).toString('utf8')
        : String(chunk);
  lines.push(text);
}

function tap(stream: NodeJS.WriteStream): void {
  const write = stream.write.bind(stream);
  stream.write = (chunk: unknown, ...rest: unknown[]) => {
    keep(chunk);
    return Reflect.apply(write, stream, [chunk, ...rest]) as boolean;
  };
}

tap(process.stdout);
tap(process.stderr);
for (const method of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const) {
  const original = console[method].bind(console);
  console[method] = (...args: unknown[]) => {
    keep(args.map((a) => (typeof a === 'string' ? a : String(JSON.stringify(a) as string | undefined))).join(' '));
    original(...args);
  };
}

/** Output from elsewhere (a child process) that belongs to the scan. */
export function captureOutput(chunk: unknown): void {
  keep(chunk);
}

/** A secret the suite used; no captured line may contain it. */
export function registerSecret(secret: string): void {
  secrets.add(secret);
}

/** How much was captured and how many secret occurrences it holds; the secrets themselves are never returned. */
export function scanForSecrets(): { chunks: number; chars: number; secrets: number; hits: number } {
  // Index the secrets by their first 8 characters, so each line is searched once per prefix.
  const byPrefix = new Map<string, Set<number>>();
  for (const secret of secrets) {
    const prefix = secret.slice(0, 8);
    byPrefix.set(prefix, (byPrefix.get(prefix) ?? new Set()).add(secret.length));
  }
  let hits = 0;
  let chars = 0;
  for (const line of lines) {
    chars += line.length;
    for (const [prefix, lengths] of byPrefix) {
      for (let at = line.indexOf(prefix); at !== -1; at = line.indexOf(prefix, at + 1)) {
        for (const length of lengths) if (secrets.has(line.slice(at, at + length))) hits++;
      }
    }
  }
  return { chunks: lines.length, chars, secrets: secrets.size, hits };
}

/** Asserts that at least `secrets` secrets were registered, some output was captured, and no line holds a secret. */
export function expectNoSecretInOutput(secrets: number): void {
  const scan = scanForSecrets();
  expect(scan.secrets).toBeGreaterThanOrEqual(secrets);
  expect(scan.chunks).toBeGreaterThan(0);
  expect(scan.hits).toBe(0);
}
