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
  /**
   * The fast path's `store.update` function, made once per record rather
   * than once per call; only one fast admission per key is ever in flight,
   * so the fields it reads cannot change under it.
   */
  readonly admitFast: (current: WindowState | undefined, inPlace?: true) => WindowState;
  /** `storeKey` with keyed state's namespace, made once: the store finds its own string by identity. */
  readonly recordKey: string;

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
}

const minEpoch = 1024;

/**
 * The key records of one limiter, per store. An idle record is kept until a
 * sweep finds it unused for a whole epoch (at least 1 024 lookups, and at
 * least as many as the records the last sweep kept), so memory follows the
 * keys in use, not every key ever seen, and sweeping costs O(1) a lookup.
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
    if (!queue) {
      queue = new KeyQueue(key, `${this.prefix}:${key}`, store, this.admit, this.namespace);
      shelf.byKey.set(key, queue);
    }
    queue.mark = shelf.epoch;
    return queue;
  }

  /** How many records `store` has here. */
  size(store: Store): number {
    return this.shelves.get(store)?.byKey.size ?? 0;
  }

  private shelfOf(store: Store): Shelf {
    if (store === this.lastStore) return this.lastShelf as Shelf;
    let shelf = this.shelves.get(store);
    if (!shelf) this.shelves.set(store, (shelf = { byKey: new Map(), epoch: 0, untilSweep: minEpoch }));
    this.lastStore = store;
    this.lastShelf = shelf;
    return shelf;
  }

  private sweep(shelf: Shelf): void {
    for (const [key, queue] of shelf.byKey) if (queue.mark !== shelf.epoch && queue.idle) shelf.byKey.delete(key);
    shelf.epoch++;
    shelf.untilSweep = Math.max(minEpoch, shelf.byKey.size);
  }
}
