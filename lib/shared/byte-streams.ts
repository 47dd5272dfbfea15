/**
 * Byte streams as async iterables, with bounded memory: the first bytes of a stream read ahead
 * (to decide what an answer is before passing it on), and a hand-off from one reader to another
 * that holds one chunk at a time (to keep an answer while it streams to its caller).
 */

/** A stream's first bytes, read ahead, and the rest of it still to be read. */
export interface Head {
  /** up to `limit` bytes (more only by the part of the chunk that passed it) */
  bytes: Uint8Array;
  /** true when the stream ended within the head: `bytes` is all of it */
  whole: boolean;
  /** the head again, then the rest of the stream */
  all: AsyncIterable<Uint8Array>;
}

/**
 * Reads `stream` until `limit` bytes or its end, whichever comes first; an error while reading
 * is thrown here. The stream's iterator is taken once and handed on in `all`.
 */
export async function readHead(stream: AsyncIterable<Uint8Array>, limit: number): Promise<Head> {
  const iterator = stream[Symbol.asyncIterator]();
  const chunks: Uint8Array[] = [];
  let size = 0;
  let whole = false;
  while (size < limit) {
    const next = await iterator.next();
    if (next.done) {
      whole = true;
      break;
    }
    chunks.push(next.value);
    size += next.value.byteLength;
  }
  const bytes = chunks.length === 1 ? (chunks[0] as Uint8Array) : Buffer.concat(chunks);
  async function* all(): AsyncGenerator<Uint8Array> {
    if (bytes.byteLength > 0) yield bytes;
    if (whole) return;
    for (;;) {
      const next = await iterator.next();
      if (next.done) return;
      yield next.value;
    }
  }
  return { bytes, whole, all: all() };
}

/**
 * A one-chunk hand-off: `push` resolves once the reader of `stream` took the chunk, so the
 * writer goes no faster than the reader and nothing piles up. `end` and `fail` finish it.
 */
export class Relay {
  private waiting: ((item: IteratorResult<Uint8Array> | Error) => void) | undefined;
  private pending: { item: IteratorResult<Uint8Array> | Error; taken: () => void } | undefined;
  private finished = false;

  readonly stream: AsyncIterable<Uint8Array> = {
    [Symbol.asyncIterator]: () => ({
      next: () =>
        new Promise<IteratorResult<Uint8Array>>((resolve, reject) => {
          const take = (item: IteratorResult<Uint8Array> | Error): void =>
            item instanceof Error ? reject(item) : resolve(item);
          const pending = this.pending;
          if (pending) {
            this.pending = undefined;
            pending.taken();
            take(pending.item);
          } else this.waiting = take;
        }),
    }),
  };

  private hand(item: IteratorResult<Uint8Array> | Error): Promise<void> {
    if (this.finished) return Promise.resolve();
    if (item instanceof Error || item.done) this.finished = true;
    const waiting = this.waiting;
    if (waiting) {
      this.waiting = undefined;
      waiting(item);
      return Promise.resolve();
    }
    return new Promise<void>((taken) => (this.pending = { item, taken }));
  }

  /** Hands one chunk over; resolves when it was taken. */
  push(chunk: Uint8Array): Promise<void> {
    return this.hand({ done: false, value: chunk });
  }

  /** The stream ends here. */
  end(): void {
    void this.hand({ done: true, value: undefined });
  }

  /** The reader gave up (its store failed): every hand-off from now on resolves at once. */
  drop(): void {
    this.finished = true;
    const pending = this.pending;
    this.pending = undefined;
    pending?.taken();
  }

  /** The stream ends with `error` (its reader sees it thrown). */
  fail(error: Error): void {
    void this.hand(error);
  }
}
