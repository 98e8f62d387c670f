/**
 * Counts the calls of each circuit in flight in this process: admitted by
 * a closed circuit and not judged yet. The failure rate counts them as
 * calls that may still succeed (see `settle` in `circuit.ts`). A key leaves
 * the map at zero, so it holds only the keys with calls out. Internal.
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
    const left = (this.calls.get(key) ?? 1) - 1;
    if (left > 0) this.calls.set(key, left);
    else this.calls.delete(key);
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
