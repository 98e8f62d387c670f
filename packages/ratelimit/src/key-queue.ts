import type { Clock, CompletionContext, Store } from '@sluice/core';
import type { LimitKind } from './errors.js';
import type { Decision, WindowState } from './window-state.js';

/** The parts of a call the limiter uses (a whole `CompletionContext` will do). */
export type Caller = Pick<CompletionContext, 'id' | 'clock' | 'events' | 'signal' | 'store' | 'remainingMs'>;

/** An admitted request: hand it back to `Limiter.finish` when its response settled. */
export interface Ticket {
  readonly key: string;
  /** Tokens reserved for it. */
  readonly reserved: number;
  /** How long it waited. */
  readonly waitedMs: number;
  /** The state's `at` its booking was made at; undefined when nothing was booked (the store failed, policy open). */
  readonly bookedAt: number | undefined;
}

/** A request in a key's queue. */
export interface Waiter {
  readonly caller: Caller;
  readonly cost: number;
  readonly enqueuedAt: number;
  /** Past this `clock.now()` it can no longer be admitted: its maxWaitMs or its call's deadline. */
  readonly latestAt: number;
  readonly bound: 'maxWaitMs' | 'deadline';
  limit: LimitKind;
  /** It was told it waits (`limit-wait`), and its abort and maxWaitMs are watched. */
  announced: boolean;
  gone: boolean;
  resolve(ticket: Ticket): void;
  reject(error: unknown): void;
  detach(): void;
}

/**
 * Everything in-process about one key: its FIFO queue, its slots, its
 * wake-up timer, and the one admission that may be with the store on the
 * fast path. Kept while the key is busy and a little after (see
 * {@link KeyQueues}), so a key called one request at a time reuses it.
 */
export class KeyQueue {
  readonly waiters: Waiter[] = [];
  /** Index of the first waiter not yet gone (the array is compacted now and then). */
  first = 0;
  /** Waiters not gone, and their token reservations. */
  live = 0;
  liveCost = 0;
  /** Live waiters told they wait (announced): what `limit-wait`'s `queued` counts. */
  waiting = 0;
  inFlight = 0;
  timer: { handle: unknown; clock: Clock } | undefined = undefined;
  pumping = false;
  again = false;
  /** How many waiters from the head are being admitted with the store (each holds a slot already). */
  trying = 0;
  /** The state as last read or written, for wait estimates. */
  seen: WindowState | undefined = undefined;
  /** A fast-path admission is with the store: it holds a slot, and nobody else may be admitted before it answers. */
  fastBusy = false;
  /** That admission's cost and time, read by {@link KeyQueue.admitFast}. */
  fastCost = 0;
  fastNow = 0;
  /** The clock its reducer reads the decision time from once, at its first run; cleared then. */
  fastClock: Clock | undefined = undefined;
  /** What the store decided for it. */
  fastDecision: Decision | undefined = undefined;
  /** The sweep epoch this record was last used in. */
  mark = 0;
  /** Its key's hash once the records' ghosts are kept (see {@link KeyQueues}), else 0: a small integer, never boxed. */
  hash = 0;
  /**
   * The fast path's `store.update` function, made once per record rather
   * than once per call; only one fast admission per key is ever in flight,
   * so the fields it reads cannot change under it.
   */
  readonly admitFast: (current: WindowState | undefined, inPlace?: true) => WindowState;
  /** `storeKey` with keyed state's namespace, made once: the store finds its own string by identity. */
  readonly recordKey: string;
  /** The memory store's note of this key's record (`RecordSlot`: written by the store alone), so that it needs no lookup. */
  slotOwner: unknown = undefined;
  slotEntry: unknown = undefined;

  constructor(
    readonly key: string,
    readonly storeKey: string,
    readonly store: Store,
    admit: (queue: KeyQueue, current: WindowState | undefined, inPlace?: true) => WindowState,
    namespace: string,
  ) {
    this.admitFast = (current, inPlace) => admit(this, current, inPlace);
    this.recordKey = namespace + storeKey;
  }

  /** Nothing waits, runs or is scheduled on this key. */
  get idle(): boolean {
    return this.live === 0 && this.inFlight === 0 && this.timer === undefined && !this.pumping && !this.fastBusy;
  }

  /** The first waiter not gone. */
  head(): Waiter | undefined {
    const { waiters } = this;
    while (this.first < waiters.length && (waiters[this.first] as Waiter).gone) this.first++;
    if (this.first > 1024 && this.first * 2 > waiters.length) {
      waiters.splice(0, this.first);
      this.first = 0;
    }
    return waiters[this.first];
  }

  /** Adds a waiter at the back, or at the front for one that was first in line already. */
  add(waiter: Waiter, atHead: boolean): void {
    if (!atHead) this.waiters.push(waiter);
    else if (this.first > 0) this.waiters[--this.first] = waiter;
    else this.waiters.unshift(waiter);
    this.live++;
    this.liveCost += waiter.cost;
  }

  /** Counts `waiter` out (the array drops it lazily); false if it had left already. */
  remove(waiter: Waiter): boolean {
    if (waiter.gone) return false;
    waiter.gone = true;
    this.live--;
    this.liveCost -= waiter.cost;
    if (waiter.announced) this.waiting--;
    return true;
  }
}

interface Shelf {
  readonly byKey: Map<string, KeyQueue>;
  epoch: number;
  /** Lookups left before the next sweep. */
  untilSweep: number;
  /** Lookups an epoch lasts: between {@link minEpoch} and {@link maxEpoch}, as the keys' recurrence asks. */
  length: number;
  /** This epoch's lookups that found their record, and those that found it swept within the horizon. */
  hits: number;
  ghostHits: number;
  /** The keys swept lately, by hash (see {@link Ghosts}); made at the first sweep that forgets one. */
  ghosts: Ghosts | undefined;
}

const minEpoch = 1024;
const maxEpoch = 32_768;
/** How many epochs back a swept key still counts as one that would have been kept by longer epochs. */
const horizon = 16;

/**
 * The keys swept in the last {@link horizon} epochs, as a table of hashes
 * rather than the keys themselves (which would keep every key string
 * alive). One 32-bit slot per hash's low bits, 64 KB in all so that it
 * stays in cache, holds the epoch the key was swept in (its low 15 bits)
 * and 14 other bits of its hash, so another key hashing to the slot is
 * told apart but for one in 16,384. A slot is overwritten by the next key
 * swept into it, so some ghosts are missed: epochs grow a little later,
 * never wrongly.
 */
class Ghosts {
  private readonly slots = new Int32Array(1 << 14);

  /** Remembers `hash` as swept in `epoch`. */
  add(hash: number, epoch: number): void {
    this.slots[hash & 0x3fff] = ((epoch & 0x7fff) << 16) | tagOf(hash);
  }

  /** Whether `hash` was swept in the last {@link horizon} epochs before `epoch`. */
  has(hash: number, epoch: number): boolean {
    const slot = this.slots[hash & 0x3fff] as number;
    return (slot & 0xffff) === tagOf(hash) && ((epoch - (slot >>> 16)) & 0x7fff) <= horizon;
  }
}

/** Bits of a hash that are not its slot, never 0 (an empty slot). */
const tagOf = (hash: number): number => ((hash >>> 17) | 1) & 0xffff;

/** FNV-1a of a string's UTF-16 code units: the ghosts' hash, made once per record. */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash | 0;
}

/**
 * The key records of one limiter, per store. An idle record is kept until a
 * sweep finds it unused for a whole epoch, so memory follows the keys in
 * use, not every key ever seen, and sweeping costs O(1) a lookup.
 *
 * An epoch lasts 1,024 lookups to start with. Keys that come back after
 * their record was swept (a few thousand tenants in turn, say, where every
 * call would otherwise make its record again, and the collector reclaim
 * it) double it, up to 32,768 lookups; a stream of keys that seldom come
 * back halves it again. So a limiter over a million one-off keys keeps
 * at most about 2,048 records, and one over ten thousand tenants called in
 * turn keeps theirs.
 */
export class KeyQueues {
  private readonly shelves = new WeakMap<Store, Shelf>();
  private lastStore: Store | undefined;
  private lastShelf: Shelf | undefined;

  constructor(
    private readonly prefix: string,
    private readonly admit: (queue: KeyQueue, current: WindowState | undefined, inPlace?: true) => WindowState,
    /** Keyed state's namespace, which each record's whole key starts with. */
    private readonly namespace: string,
  ) {}

  /** The record of `key` on `store`, made if missing. */
  get(store: Store, key: string): KeyQueue {
    const shelf = this.shelfOf(store);
    if (--shelf.untilSweep <= 0) this.sweep(shelf);
    let queue = shelf.byKey.get(key);
    if (queue) shelf.hits++;
    else {
      queue = new KeyQueue(key, `${this.prefix}:${key}`, store, this.admit, this.namespace);
      if (shelf.ghosts !== undefined) {
        queue.hash = hashOf(key);
        if (shelf.ghosts.has(queue.hash, shelf.epoch)) shelf.ghostHits++;
      }
      shelf.byKey.set(key, queue);
    }
    queue.mark = shelf.epoch;
    return queue;
  }

  /** How many records `store` has here. */
  size(store: Store): number {
    return this.shelves.get(store)?.byKey.size ?? 0;
  }

  /** How many lookups an epoch on `store` lasts now. */
  epochLength(store: Store): number {
    return this.shelves.get(store)?.length ?? minEpoch;
  }

  private shelfOf(store: Store): Shelf {
    if (store === this.lastStore) return this.lastShelf as Shelf;
    let shelf = this.shelves.get(store);
    if (!shelf) {
      shelf = { byKey: new Map(), epoch: 0, untilSweep: minEpoch, length: minEpoch, hits: 0, ghostHits: 0, ghosts: undefined };
      this.shelves.set(store, shelf);
    }
    this.lastStore = store;
    this.lastShelf = shelf;
    return shelf;
  }

  /** Forgets the idle records not used this epoch, and sets the next epoch's length. */
  private sweep(shelf: Shelf): void {
    const { epoch, byKey } = shelf;
    // forEach, not for…of: no [key, record] pair made per record.
    byKey.forEach((queue, key) => {
      if (queue.mark === epoch || !queue.idle) return;
      byKey.delete(key);
      // Made at the first record forgotten: a limiter over a few keys never needs it.
      shelf.ghosts ??= new Ghosts();
      shelf.ghosts.add(queue.hash !== 0 ? queue.hash : hashOf(key), epoch);
    });
    // One lookup in 16 made again a record swept lately: longer epochs would have kept it.
    const { length, hits, ghostHits } = shelf;
    if (ghostHits * 16 > length) shelf.length = Math.min(maxEpoch, length * 2);
    else if ((hits + ghostHits) * 4 < length) shelf.length = Math.max(minEpoch, length / 2);
    shelf.epoch = epoch + 1;
    shelf.untilSweep = shelf.length;
    shelf.hits = 0;
    shelf.ghostHits = 0;
  }
}
