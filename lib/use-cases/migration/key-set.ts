/**
 * What one migration run remembers per key it has seen: how the key was reported and, for a
 * dry run, what a later row of the key would find (its count, its status as far as a row
 * depends on it, whether a row disabled it). A Map of 1,000,000 key-id strings costs ~200 MB of
 * heap; this open-addressing table keeps the 96 bits of a key id in three Uint32 words, one
 * state byte and one Uint32 count per slot: 17 bytes a slot, ~36 MB for a million keys (2^21 slots).
 */

/** How the report counts a key: imported (new), raised (existed, count went up), unchanged. */
export type KeyOutcome = 'imported' | 'raised' | 'unchanged';

/**
 * A key's status as far as a later row depends on it: `retired` (no row changes it), `disabled`
 * by an operator (a row's disable changes nothing), or `open` (any other status, which a row's
 * disable replaces).
 */
export type SeenStatus = 'open' | 'disabled' | 'retired';

export interface SeenKey {
  outcome: KeyOutcome;
  /** the count as this run last knew it (a dry run's simulated count) */
  usageCount: number;
  status: SeenStatus;
  /** a row of the source has disabled it (the key's record of the source) */
  saidDisabled: boolean;
}

const OUTCOMES: KeyOutcome[] = ['imported', 'raised', 'unchanged'];
const STATUSES: SeenStatus[] = ['open', 'disabled', 'retired'];
const EMPTY = 0;
/** state byte: the outcome (1-3) in bits 0-1, the status in bits 2-3, the source's disable in bit 4 */
const STATUS_SHIFT = 2;
const SAID_DISABLED_BIT = 0x10;

/** Parses `k_` + 24 hex digits into three words; the id format is fixed by keyIdFor. */
function words(keyId: string): [number, number, number] {
  return [parseInt(keyId.slice(2, 10), 16), parseInt(keyId.slice(10, 18), 16), parseInt(keyId.slice(18, 26), 16)];
}

export class KeySet {
  private ids: Uint32Array;
  private states: Uint8Array;
  private counts: Uint32Array;
  private mask: number;
  size = 0;

  constructor(initialCapacity = 1 << 12) {
    this.ids = new Uint32Array(initialCapacity * 3);
    this.states = new Uint8Array(initialCapacity);
    this.counts = new Uint32Array(initialCapacity);
    this.mask = initialCapacity - 1;
  }

  private slotOf(word0: number, word1: number, word2: number): number {
    // The id is a SHA-256 prefix: its first word is already uniformly spread.
    let slot = word0 & this.mask;
    for (;;) {
      if (this.states[slot] === EMPTY) return slot;
      const at = slot * 3;
      if (this.ids[at] === word0 && this.ids[at + 1] === word1 && this.ids[at + 2] === word2) return slot;
      slot = (slot + 1) & this.mask;
    }
  }

  get(keyId: string): SeenKey | undefined {
    const slot = this.slotOf(...words(keyId));
    const state = this.states[slot] ?? EMPTY;
    if (state === EMPTY) return undefined;
    return {
      outcome: OUTCOMES[(state & 0x03) - 1] as KeyOutcome,
      usageCount: this.counts[slot] ?? 0,
      status: STATUSES[(state >> STATUS_SHIFT) & 0x03] as SeenStatus,
      saidDisabled: (state & SAID_DISABLED_BIT) !== 0,
    };
  }

  set(keyId: string, value: SeenKey): void {
    if ((this.size + 1) * 10 > this.states.length * 7) this.grow();
    this.put(
      words(keyId),
      (OUTCOMES.indexOf(value.outcome) + 1) |
        (STATUSES.indexOf(value.status) << STATUS_SHIFT) |
        (value.saidDisabled ? SAID_DISABLED_BIT : 0),
      value.usageCount,
    );
  }

  private put(id: [number, number, number], state: number, count: number): void {
    const slot = this.slotOf(...id);
    if (this.states[slot] === EMPTY) {
      this.size++;
      this.ids.set(id, slot * 3);
    }
    this.states[slot] = state;
    // Only a dry run reads the count back; a count past 2^32 - 1 (never seen in practice) saturates.
    this.counts[slot] = Math.min(count, 0xffffffff);
  }

  private grow(): void {
    const { ids, states, counts } = this;
    const capacity = states.length * 2;
    this.ids = new Uint32Array(capacity * 3);
    this.states = new Uint8Array(capacity);
    this.counts = new Uint32Array(capacity);
    this.mask = capacity - 1;
    this.size = 0;
    for (let slot = 0; slot < states.length; slot++) {
      const state = states[slot] ?? EMPTY;
      if (state !== EMPTY)
        this.put([ids[slot * 3] ?? 0, ids[slot * 3 + 1] ?? 0, ids[slot * 3 + 2] ?? 0], state, counts[slot] ?? 0);
    }
  }
}
