/**
 * Spaces request starts so a run never asks the provider faster than its rate, however many
 * requests are in flight. Starts are granted one at a time and measured from the moment each
 * was granted, so a stalled event loop cannot release a burst afterwards.
 */
export interface PacerOptions {
  /** requests per second */
  rate: number;
  clock?: () => number;
  sleep?: (ms: number) => Promise<void>;
}

const defaultSleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/**
 * A couple of milliseconds more than 1000/rate between starts: the provider measures arrival
 * times, and loopback or network jitter must not make two starts 1000/rate apart look closer.
 */
const MARGIN_MS = 2;

export class Pacer {
  private intervalMs: number;
  private lastStart = Number.NEGATIVE_INFINITY;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly clock: () => number;
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(options: PacerOptions) {
    if (!(options.rate > 0)) throw new RangeError('the rate must be above 0');
    this.intervalMs = 1000 / options.rate + MARGIN_MS;
    this.clock = options.clock ?? Date.now;
    this.sleep = options.sleep ?? defaultSleep;
  }

  /** The current rate, requests per second. */
  get rate(): number {
    return 1000 / (this.intervalMs - MARGIN_MS);
  }

  /** Halves the rate for every start not yet granted (the provider answered 429). */
  halve(): void {
    this.intervalMs = (this.intervalMs - MARGIN_MS) * 2 + MARGIN_MS;
  }

  /**
   * Resolves true when the caller may start its request, or false (at once) if that moment
   * would be after `deadlineMs`: a run never waits past its deadline.
   */
  acquire(deadlineMs = Number.POSITIVE_INFINITY): Promise<boolean> {
    const turn = this.queue.then(async () => {
      let wait = this.lastStart + this.intervalMs - this.clock();
      if (this.clock() + Math.max(0, wait) > deadlineMs) return false;
      while (wait > 0) {
        await this.sleep(wait);
        wait = this.lastStart + this.intervalMs - this.clock();
      }
      this.lastStart = this.clock();
      return true;
    });
    this.queue = turn;
    return turn;
  }
}
