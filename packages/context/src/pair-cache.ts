/** What {@link PairCache.get} returns for a pair it has not seen. */
export const unknownPair = -2;

/**
 * Remembers which token two adjacent tokens merge into (-1: none), so the
 * byte-pair merge looks a pair up by two integers instead of hashing its
 * bytes. Open addressing in typed arrays; emptied when half full, so a
 * lookup of a pair not seen (most of them, on text like random CJK) ends
 * after about 2.5 probes rather than 8.5 at three quarters; 1.5 MiB;
 * internal.
 *
 * @example
 * ```ts
 * const pairs = new PairCache();
 * if (pairs.get(a, b) === unknownPair) pairs.set(a, b, rankOfBytes());
 * ```
 */
export class PairCache {
  private static readonly size = 1 << 17;
  /** Left token + 1, so 0 marks an empty slot. */
  private readonly left = new Int32Array(PairCache.size);
  private readonly right = new Int32Array(PairCache.size);
  private readonly merged = new Int32Array(PairCache.size);
  private used = 0;

  private slotOf(left: number, right: number): number {
    const hash = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x632be5ab, 0x85ebca77);
    return (hash ^ (hash >>> 15)) & (PairCache.size - 1);
  }

  /** The token `left` and `right` merge into, -1 for none, or {@link unknownPair}. */
  get(left: number, right: number): number {
    const mask = PairCache.size - 1;
    for (let slot = this.slotOf(left, right); ; slot = (slot + 1) & mask) {
      const stored = this.left[slot] as number;
      if (stored === 0) return unknownPair;
      if (stored === left + 1 && this.right[slot] === right) return this.merged[slot] as number;
    }
  }

  /** Records what `left` and `right` merge into (-1 for none). */
  set(left: number, right: number, merged: number): void {
    if (this.used * 2 >= PairCache.size) {
      this.left.fill(0);
      this.used = 0;
    }
    const mask = PairCache.size - 1;
    let slot = this.slotOf(left, right);
    while (this.left[slot] !== 0) slot = (slot + 1) & mask;
    this.left[slot] = left + 1;
    this.right[slot] = right;
    this.merged[slot] = merged;
    this.used++;
  }
}
