/**
 * What one migration run remembers per key it has seen: how the key was reported and, for a
 * dry run, the count it would have. A Map of 1,000,000 key-id strings costs ~200 MB of heap;
 * this open-addressing table keeps the 96 bits of a key id in three Uint32 words, one state
 * byte and one Uint32 count per slot: 17 bytes a slot, ~36 MB for a million keys (2^21 slots).
 */

/** How the report counts a key: imported (new), raised (existed, count went up), unchanged. */
export type KeyOutcome = 'imported' | 'raised' | 'unchanged';

export interface SeenKey {
  outcome: KeyOutcome;
  /** the count as this run last knew it (a dry run's simulated count) */
  usageCount: number;
  disabled: boolean;
}

const OUTCOMES: KeyOutcome[] = ['imported', 'raised', 'unchanged'];
const EMPTY = 0;
const DISABLED_BIT = 0x10;

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
      outcome: OUTCOMES[(state & 0x0f) - 1] as KeyOutcome,
      disabled: (state & DISABLED_BIT) !== 0,
      usageCount: this.counts[slot] ?? 0,
    };
  }

  set(keyId: string, value: SeenKey): void {
    if ((this.size + 1) * 10 > this.states.length * 7) this.grow();
    this.put(
      words(keyId),
      (OUTCOMES.indexOf(value.outcome) + 1) | (value.disabled ? DISABLED_BIT : 0),
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
