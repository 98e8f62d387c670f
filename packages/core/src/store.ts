import { systemClock, type Clock } from './clock.js';
import { ValidationError } from './errors.js';

/** Marks stores that answer in-process, which need no timeout. */
export const kInProcess = Symbol.for('sluice.store.in-process');

/**
 * Marks a store that bounds its own calls: every call it is given settles
 * by itself, rejecting with a `StoreError` once the store's own deadline
 * has passed, so `keyedState` sets no timer of its own around it (unless a
 * middleware asks for a `timeoutMs` of its own). A store's own deadline
 * can be the better one: it can start when the request goes out rather
 * than when the call was made, and leave out the time this process spent
 * stalled, which a timer around the call cannot tell from a slow store.
 * Set it as a property whose value is `true` (`redisStore` does).
 *
 * @example
 * ```ts
 * const store = { ...myStoreMethods, [kOwnDeadline]: true };
 * ```
 */
export const kOwnDeadline = Symbol.for('sluice.store.own-deadline');

/**
 * The memory store's synchronous `update`, for `keyedState` alone: an
 * update through it costs one promise instead of three and no store call
 * of its own. Not `Symbol.for`: a second copy of core simply does not find
 * it and goes through `update`. It holds the `update` it stands for, and
 * is used only while the store's `update` is still that one: a store made
 * by spreading the memory store and replacing `update` is called through
 * its own `update`.
 */
export const kUpdateNow = Symbol('sluice.store.update-now');

/** What a memory store holds under {@link kUpdateNow}; internal. */
export interface UpdateNowHook {
  /** The store's own async `update`, which this stands for. */
  update: Store['update'];
  /** The store's clock: a caller that read this same clock for the update may pass what it read as `at`. */
  clock: Clock;
  /**
   * The same update, answered at once; `at`, when given, is `clock.now()`
   * as the caller just read it. The reducer runs exactly once, in this
   * process, on the value the store holds. With `inPlace`, the reducer
   * promises that what it returns shares nothing with anything another
   * holds; a record such a reducer wrote last is handed to the next such
   * one with `true` as its second argument, and may be changed where it is
   * (see {@link InPlaceReducer}).
   */
  now<T>(key: string, update: InPlaceReducer<T>, ttlMs?: TimeToLive<T>, at?: number, inPlace?: boolean, slot?: RecordSlot): T;
}

/**
 * Where a caller that comes back to one record keeps the memory store's
 * note of it (see `KeyedUpdateOptions.slot`): the next update of that
 * record through the same store finds it there instead of in the store's
 * Map. Its fields are the store's: start them `undefined` and never write
 * them.
 */
export interface RecordSlot {
  /** The store that wrote the note. */
  slotOwner: unknown;
  /** The store's record. */
  slotEntry: unknown;
}

/**
 * A reducer that may be told it runs in place: `inPlace` is `true` only
 * when the store runs it exactly once, in this process, on the very value
 * it holds, and that value was written last by a reducer that asked for
 * this (`keyedState`'s `inPlace` option, on the memory store): changing
 * `current` and returning it is then safe, and saves a copy of the record
 * on every write. Otherwise (`undefined`: a remote store, which may run it
 * more than once; a record from `store.set` or another reducer; a store's
 * public `update`) it must be pure. `store.get` on the memory store hands
 * out the record itself: copy it to keep a snapshot.
 */
export type InPlaceReducer<T> = (current: T | undefined, inPlace?: true) => T;

/** A record's time to live: fixed, or computed from the value just written. */
export type TimeToLive<T> = number | ((value: T) => number);

/**
 * The state that stateful middleware (breaker, limiter, budget) share
 * between requests, and between processes when the store is distributed.
 *
 * Values are plain JSON-serialisable data. `update` is the one atomic
 * operation: a Redis store implements it with a script or compare-and-set,
 * the memory store synchronously, so middleware never read-then-write
 * racily. Middleware reach a store through `keyedState` (`@sluice/core/kit`),
 * which adds the namespace, the TTL and the store-failure policy.
 */
export interface Store {
  // Each method answers with a promise. Keyed state also takes a store that answers with the
  // value itself (a Map behind a few lines of JavaScript), as `await` would.
  get<T>(key: string): Promise<T | undefined>;
  /** @param ttlMs - drop the key after this long; omitted keeps it */
  set<T>(key: string, value: T, ttlMs?: number): Promise<void>;
  /**
   * Atomically replaces the value with `update(current)` and returns it.
   * `update` must be pure: a distributed store may call it more than once.
   *
   * @param ttlMs - drop the key this long after the write; a function gets the new value
   */
  update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: TimeToLive<T>): Promise<T>;
  delete(key: string): Promise<void>;
}

/** Options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /** Time source for expiry (default the system clock; tests pass a fake one). */
  clock?: Clock;
  /**
   * The most records kept (default 100 000). Past it, the least recently
   * written record is evicted first, so memory has a bound whatever the
   * number of keys (tenants, users) a pipeline sees. An evicted record is
   * forgotten: a budget or limit keyed per tenant starts that tenant again
   * from nothing. Keep it above the keys live within a period or a window
   * (the store's `evicted` count says when it was not), or use a shared
   * store such as `@sluice/redis`.
   */
  maxEntries?: number;
}

/** What {@link memoryStore} returns: a {@link Store} that says how full it is. */
export interface MemoryStore extends Store {
  /** Records held now (expired ones not yet swept included). */
  readonly size: number;
  /** Records evicted to keep `maxEntries` before they ran out: each a key's state forgotten early. */
  readonly evicted: number;
}

/** A record, linked into the store's list in order of last write. */
interface Entry {
  key: string;
  value: unknown;
  expiresAt: number;
  /** The record written just before this one (toward the oldest). */
  older: Entry | undefined;
  /** The record written just after this one (toward the newest). */
  newer: Entry | undefined;
  /** Its value was returned by a reducer that may change it in place next time (see `UpdateNowHook.now`). */
  owned: boolean;
}

/**
 * The default {@link Store}: a Map in this process, bounded, with expiry
 * read from the clock, so it follows fake time in tests.
 *
 * @param options - `clock` and `maxEntries`
 * @example
 * ```ts
 * const store = memoryStore({ maxEntries: 10_000 });
 * createPipeline({ transport, store });
 * ```
 */
export function memoryStore(options: MemoryStoreOptions = {}): MemoryStore {
  const { clock = systemClock, maxEntries = 100_000 } = options;
  if (!Number.isInteger(maxEntries) || maxEntries < 1) {
    throw new ValidationError('memoryStore.maxEntries', 'must be a positive integer');
  }
  // The Map finds a record; the records themselves form a list in order of
  // last write (oldest first), so a rewrite moves its record to the end in
  // a few pointer writes and eviction takes the first. The Map is touched
  // only when a key comes or goes. Keeping the order in the Map instead
  // (delete, then set again, on every write) cost about 1 µs a write in a
  // Map of a few keys, which V8 rehashes every few such writes, and the
  // Map iterators that eviction and the sweep kept live pinned every table
  // the Map left behind (300 MB after 2 million writes to one key).
  const entries = new Map<string, Entry>();
  let oldest: Entry | undefined;
  let newest: Entry | undefined;
  /** The next record the sweep looks at. */
  let cursor: Entry | undefined;
  // No record runs out before `sweepFrom`, so until then the sweep has
  // nothing to find and looks at nothing: with many keys, each record it
  // looks at is one the processor's caches do not hold (about a third of a
  // write's cost over 10,000 keys). `earliest` is the least expiry written
  // or looked at in the sweep's current pass over the records; when the
  // pass ends it becomes `sweepFrom`, since every record then in the store
  // was written or looked at in that pass.
  let sweepFrom = Infinity;
  let earliest = Infinity;
  let evicted = 0;

  const unlink = (entry: Entry) => {
    if (cursor === entry) cursor = entry.newer;
    if (entry.older) entry.older.newer = entry.newer;
    else oldest = entry.newer;
    if (entry.newer) entry.newer.older = entry.older;
    else newest = entry.older;
    entry.older = entry.newer = undefined;
  };
  const append = (entry: Entry) => {
    entry.older = newest;
    if (newest) newest.newer = entry;
    else oldest = entry;
    newest = entry;
  };
  const remove = (entry: Entry) => {
    entries.delete(entry.key);
    unlink(entry);
    // Marks it gone, for an update that found it before its reducer ran.
    entry.expiresAt = -Infinity;
  };
  const live = (key: string): Entry | undefined => {
    const entry = entries.get(key);
    if (entry && entry.expiresAt <= clock.now()) {
      remove(entry);
      return undefined;
    }
    return entry;
  };
  const sweep = (now: number) => {
    // Keys that expire unread (one per user, say) would pile up: two
    // records looked at per write visit every record within about size
    // writes (a rewritten record moves behind the sweep, at most one a
    // write), so memory follows the live keys, at a constant cost per write.
    if (now < sweepFrom) return;
    for (let i = 0; i < 2; i++) {
      const entry = cursor;
      if (entry === undefined) {
        // A pass has ended: no record now in the store runs out before `earliest`.
        sweepFrom = earliest;
        earliest = Infinity;
        cursor = oldest;
        return;
      }
      cursor = entry.newer;
      if (entry.expiresAt <= now) remove(entry);
      else if (entry.expiresAt < earliest) earliest = entry.expiresAt;
    }
  };
  const put = (key: string, value: unknown, ttlMs: number | undefined) => {
    write(key, entries.get(key), value, ttlMs, clock.now(), false);
  };
  /** Writes `value` to `found` (the key's record, if it is still in the store) or to a new record, and returns the record written. */
  const write = (key: string, found: Entry | undefined, value: unknown, ttlMs: number | undefined, now: number, owned: boolean): Entry => {
    sweep(now);
    // A TTL of 0 or less has run out already (as Redis drops such a key); none, or NaN, never runs out.
    const expiresAt = ttlMs === undefined || Number.isNaN(ttlMs) ? Infinity : ttlMs <= 0 ? now : now + ttlMs;
    if (expiresAt < earliest) earliest = expiresAt;
    if (expiresAt < sweepFrom) sweepFrom = expiresAt;
    // The sweep, or a reducer that wrote to the store, may have removed it meanwhile.
    if (found !== undefined && found.expiresAt !== -Infinity) {
      found.value = value;
      found.expiresAt = expiresAt;
      found.owned = owned;
      if (found !== newest) {
        unlink(found);
        append(found);
      }
      return found;
    }
    const entry: Entry = { key, value, expiresAt, older: undefined, newer: undefined, owned };
    entries.set(key, entry);
    append(entry);
    // The least recently written record goes first.
    if (entries.size > maxEntries && oldest) {
      if (oldest.expiresAt > now) evicted++;
      remove(oldest);
    }
    return entry;
  };
  const updateNow = <T>(key: string, update: InPlaceReducer<T>, ttlMs?: TimeToLive<T>, at?: number, inPlace = false, slot?: RecordSlot): T => {
    // One lookup and one reading of the clock for both the read and the
    // write (none, when the caller just read the same clock): every keyed
    // middleware makes one to three of these a call. No lookup when the
    // caller kept the record's note: over many keys, the Map's lookup
    // reads memory no cache holds (half of a write's cost over 10,000).
    const now = at ?? clock.now();
    let found: Entry | undefined;
    if (slot !== undefined && slot.slotOwner === entries) {
      found = slot.slotEntry as Entry;
      // Removed (expired, evicted, deleted) since, or a note of another key: looked up as any other.
      if (found.expiresAt === -Infinity || found.key !== key) found = entries.get(key);
    } else found = entries.get(key);
    if (found !== undefined && found.expiresAt <= now) {
      remove(found);
      found = undefined;
    }
    const owned = found !== undefined && found.owned;
    const next = inPlace && owned ? update(found?.value as T, true) : update(found?.value as T | undefined);
    // What such a reducer returns is its own, except the value it was given, returned as it was: that stays as owned as it was.
    const written = write(key, found, next, typeof ttlMs === 'function' ? ttlMs(next) : ttlMs, now, inPlace && (owned || next !== found?.value));
    if (slot !== undefined) {
      slot.slotOwner = entries;
      slot.slotEntry = written;
    }
    return next;
  };
  const store: MemoryStore & { [kInProcess]: true } = {
    [kInProcess]: true,
    get size() {
      return entries.size;
    },
    get evicted() {
      return evicted;
    },
    async get<T>(key: string) {
      return live(key)?.value as T | undefined;
    },
    async set(key, value, ttlMs) {
      put(key, value, ttlMs);
    },
    async update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: TimeToLive<T>) {
      return updateNow(key, update, ttlMs);
    },
    async delete(key) {
      const entry = entries.get(key);
      if (entry) remove(entry);
    },
  };
  // Not enumerable, so a spread of the store does not carry it.
  const hook: UpdateNowHook = { update: store.update, clock, now: updateNow };
  Object.defineProperty(store, kUpdateNow, { value: hook });
  return store;
}
