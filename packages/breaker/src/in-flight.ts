/** Keys the map may hold before those at zero are dropped, at least. */
const minPruneAt = 256;

/**
 * Counts the calls of each circuit in flight in this process: admitted by
 * a closed circuit and not judged yet. The failure rate counts them as
 * calls that may still succeed (see `settle` in `circuit.ts`). A key at
 * zero stays in the map until the map grows past a few hundred keys, then
 * every key at zero leaves at once: adding and deleting a key of a small
 * Map on every call cost two to three times keeping it, and the map still
 * holds at most about twice as many keys as have calls out. Internal.
 *
 * @example
 * ```ts
 * const inFlight = new InFlight();
 * inFlight.enter(key);
 * settle(current, ticket, 'failure', now, rules, { pending: inFlight.count(key) });
 * ```
 */
export class InFlight {
  private readonly calls = new Map<string, number>();
  private pruneAt = minPruneAt;

  /**
   * A call of `key` was admitted.
   *
   * @param key - the circuit's key
   */
  enter(key: string): void {
    this.calls.set(key, (this.calls.get(key) ?? 0) + 1);
  }

  /**
   * A call of `key` is about to be judged.
   *
   * @param key - the circuit's key
   */
  leave(key: string): void {
    this.calls.set(key, Math.max(0, (this.calls.get(key) ?? 1) - 1));
    if (this.calls.size <= this.pruneAt) return;
    for (const [each, count] of this.calls) if (count === 0) this.calls.delete(each);
    // Twice the keys still out: pruning stays a constant cost per call however many keys have calls out.
    this.pruneAt = Math.max(minPruneAt, 2 * this.calls.size);
  }

  /**
   * The calls of `key` in flight.
   *
   * @param key - the circuit's key
   */
  count(key: string): number {
    return this.calls.get(key) ?? 0;
  }
}
