/*
 * Why not a Map: every miss adds its flight to the table and removes it
 * when it lands, so a Map of the flights in flight is rewritten on every
 * miss. Measured (64 calls in flight, no storage), that Map had every
 * miss's flight and key, about 280 bytes, promoted to the old generation:
 * 480 bytes a call promoted against 140 without it, and old collections
 * paid for them. The likely cause: removing leaves a hole in a Map's table,
 * once the holes fill V8 copies the live entries into a new table, and the
 * old one, already in the old generation, still points at the flights of
 * that moment; the young-generation GC takes what an old object points at
 * as alive until a full GC has found that object dead. Here a removal clears its slot at once and
 * moves the entries after it back (no holes), so the array is rebuilt only
 * when the number in flight doubles or falls to an eighth.
 */

/** What the table keeps: anything that knows its own key and hash (a flight); internal. */
export interface Keyed {
  readonly key: string;
  readonly hash: number;
}

const minSlots = 64;

/**
 * The flights in flight by storage key: open addressing with linear
 * probing, removal by backward shift; internal.
 */
export class FlightTable<T extends Keyed> {
  private slots: Array<T | undefined> = new Array<T | undefined>(minSlots).fill(undefined);
  private mask = minSlots - 1;
  private count = 0;

  /** How many entries it holds. */
  get size(): number {
    return this.count;
  }

  /**
   * The entry for `key`, if there is one.
   *
   * @param key - the storage key
   * @param hash - {@link keyHash} of it
   */
  get(key: string, hash: number): T | undefined {
    const slots = this.slots;
    for (let index = hash & this.mask; ; index = (index + 1) & this.mask) {
      const entry = slots[index];
      if (entry === undefined || (entry.hash === hash && entry.key === key)) return entry;
    }
  }

  /**
   * Adds `entry`, or puts it in place of the one with its key.
   *
   * @param entry - what to keep, under its own key and hash
   */
  set(entry: T): void {
    if ((this.count + 1) * 2 > this.slots.length) this.resize(this.slots.length * 2);
    const slots = this.slots;
    let index = entry.hash & this.mask;
    for (; ; index = (index + 1) & this.mask) {
      const found = slots[index];
      if (found === undefined) break;
      if (found.hash === entry.hash && found.key === entry.key) {
        slots[index] = entry;
        return;
      }
    }
    slots[index] = entry;
    this.count++;
  }

  /**
   * Removes `entry`, only if it is the one held under its key.
   *
   * @param entry - what to remove
   */
  delete(entry: T): void {
    const slots = this.slots;
    const mask = this.mask;
    let hole = entry.hash & mask;
    for (; ; hole = (hole + 1) & mask) {
      const found = slots[hole];
      if (found === undefined) return;
      if (found === entry) break;
    }
    // Each entry after the hole, up to the next empty slot, moves back into it
    // unless its own home lies cyclically in (hole, at]: probing for it must never
    // cross an empty slot.
    for (let at = (hole + 1) & mask; ; at = (at + 1) & mask) {
      const moving = slots[at];
      if (moving === undefined) break;
      const home = moving.hash & mask;
      const stays = hole < at ? home > hole && home <= at : home > hole || home <= at;
      if (stays) continue;
      slots[hole] = moving;
      hole = at;
    }
    slots[hole] = undefined;
    this.count--;
    if (this.count * 8 < this.slots.length && this.slots.length > minSlots) this.resize(this.slots.length / 2);
  }

  private resize(length: number): void {
    const old = this.slots;
    this.slots = new Array<T | undefined>(length).fill(undefined);
    this.mask = length - 1;
    this.count = 0;
    for (const entry of old) if (entry !== undefined) this.set(entry);
  }
}

/**
 * A 32-bit hash of a storage key (`sluice:cache:<scope>:<kind>:<sha256 hex>`):
 * the digest's last eight hex digits, which are already uniform, mixed with
 * every character between the namespace and the digest, so that the same
 * request under many scopes (tenants), or as a stream and a completion,
 * does not pile into one run of slots; internal.
 *
 * @param key - the storage key
 * @param from - where the scope starts (the namespace's length)
 */
export function keyHash(key: string, from: number): number {
  const digestAt = key.length - 64;
  let hash = 0;
  for (let index = from; index < digestAt; index++) hash = Math.imul(hash ^ key.charCodeAt(index), 0x9e3779b1);
  let digits = 0;
  for (let index = key.length - 8; index < key.length; index++) {
    const code = key.charCodeAt(index);
    // '0'-'9' are 48-57, 'a'-'f' 97-102; anything else still hashes, just less evenly.
    digits = (digits << 4) | ((code <= 57 ? code - 48 : code - 87) & 15);
  }
  return (hash ^ digits) | 0;
}
