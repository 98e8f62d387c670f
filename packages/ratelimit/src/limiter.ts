import type { Clock, CompletionContext, Store } from '@sluice/core';
import { waitMs } from './bucket.js';
import type { LimiterConfig } from './rate-limit-options.js';
import { type LimitKind, RateLimitedError } from './rate-limited-error.js';
import './types.js';
import { admitted, bringUp, corrected, type Decision, decide, givenBack, type WindowState } from './window-state.js';

/** The parts of a call the limiter uses (a whole `CompletionContext` will do). */
export type Caller = Pick<CompletionContext, 'id' | 'clock' | 'events' | 'signal' | 'store' | 'remainingMs'>;

/** An admitted request: hand it back to {@link Limiter.finish} when its response settled. */
export interface Ticket {
  readonly key: string;
  /** Tokens reserved for it. */
  readonly reserved: number;
  /** How long it waited. */
  readonly waitedMs: number;
}

/** How an admitted request ended, for {@link Limiter.finish}. */
export interface Finish {
  /** Tokens it really used; `undefined` keeps the reservation as it is. */
  usedTokens?: number;
  /** Pause the key until this `clock.now()`, and why. */
  pause?: { untilMs: number; reason: 'retry-after' | 'headers' };
}

interface Waiter {
  readonly caller: Caller;
  readonly cost: number;
  readonly enqueuedAt: number;
  /** Past this `clock.now()` it can no longer be admitted: its maxWaitMs or its call's deadline. */
  readonly latestAt: number;
  readonly bound: 'maxWaitMs' | 'deadline';
  limit: LimitKind;
  announced: boolean;
  gone: boolean;
  resolve(ticket: Ticket): void;
  reject(error: unknown): void;
  detach(): void;
}

/** Everything in-process about one key: its FIFO queue, slots and wake-up timer. */
interface KeyQueue {
  readonly key: string;
  readonly storeKey: string;
  readonly store: Store;
  readonly waiters: Waiter[];
  /** Index of the first waiter not yet gone (the array is compacted now and then). */
  first: number;
  live: number;
  liveCost: number;
  inFlight: number;
  timer: { handle: unknown; clock: Clock } | undefined;
  pumping: boolean;
  again: boolean;
  /** The head while its admission is with the store (it holds a slot already). */
  trying: Waiter | undefined;
  /** The state as last read or written, for wait estimates. */
  seen: WindowState | undefined;
}

interface TicketRecord extends Ticket {
  readonly queue: KeyQueue;
  finished: boolean;
}

/**
 * The limiter behind the middleware: the window state in the store, the
 * concurrency slots and FIFO wait queues in this process, waking waiters
 * with timers on the callers' clock. One instance per `rateLimit()`.
 */
export class Limiter {
  private readonly queues = new WeakMap<Store, Map<string, KeyQueue>>();
  /** How long a key's state outlives its last write: past that it is a full bucket anyway. */
  private readonly keepMs: number;

  constructor(private readonly config: LimiterConfig) {
    const windows = [config.requests, config.tokens].map((bucket) => bucket?.windowMs ?? 0);
    this.keepMs = Math.max(3_600_000, 2 * Math.max(...windows));
  }

  /**
   * Waits (or, in reject mode, does not) until `key` admits a request of
   * `cost` tokens, and takes one concurrency slot.
   *
   * @throws RateLimitedError when it is refused; the signal's reason when the call aborts
   */
  async acquire(caller: Caller, key: string, cost: number): Promise<Ticket> {
    const queue = this.queueFor(caller, key);
    try {
      return await this.wait(caller, queue, cost);
    } finally {
      this.forgetIfIdle(queue);
    }
  }

  private wait(caller: Caller, queue: KeyQueue, cost: number): Promise<Ticket> {
    const { key } = queue;
    if (caller.signal.aborted) throw caller.signal.reason;
    const { tokens } = this.config;
    if (tokens && cost > tokens.limit) {
      throw this.refuse(caller, queue, 'tokens', undefined, `a reservation of ${cost} tokens can never fit ${tokens.limit} tokens per ${tokens.windowMs} ms; lower max_tokens or the prompt`, false);
    }
    if (this.config.mode === 'reject') return this.tryOnce(caller, queue, cost);
    const now = caller.clock.now();
    const estimate = this.estimate(queue, cost, now);
    const mustWait = estimate.limit !== undefined;
    if (mustWait && queue.live >= this.config.maxQueue) {
      throw this.refuse(caller, queue, 'queue', undefined, `${queue.live} requests already wait on ${key}`);
    }
    const remaining = caller.remainingMs();
    const bound = remaining <= this.config.maxWaitMs ? 'deadline' : 'maxWaitMs';
    const latestAt = now + Math.min(remaining, this.config.maxWaitMs);
    if (estimate.limit && now + estimate.waitMs > latestAt) {
      throw this.refuse(caller, queue, estimate.limit, estimate.waitMs, `it would wait at least ${estimate.waitMs} ms, past its ${bound}`);
    }
    return new Promise<Ticket>((resolve, reject) => {
      const waiter = this.enqueue(queue, { caller, cost, enqueuedAt: now, latestAt, bound, resolve, reject });
      if (estimate.limit) this.announce(queue, waiter, estimate.limit, estimate.waitMs);
      // Behind others it changes nothing for the head, whose timer or slot wakes the queue.
      if (queue.live === 1) this.pump(queue);
    });
  }

  /**
   * Settles an admitted request: records a pause, corrects its token
   * reservation to `usedTokens`, then frees its slot. Runs once per ticket;
   * the slot is freed even when the store fails.
   */
  async finish(ticket: Ticket, caller: Caller, how: Finish): Promise<void> {
    const record = ticket as TicketRecord;
    if (record.finished) return;
    record.finished = true;
    const { queue } = record;
    try {
      if (how.pause) await this.pause(caller, queue, how.pause.untilMs, how.pause.reason);
      const { tokens } = this.config;
      if (tokens && how.usedTokens !== undefined && how.usedTokens !== record.reserved) {
        const delta = how.usedTokens - record.reserved;
        await this.update(queue, caller.clock.now(), (state) => corrected(this.config, state, delta));
      }
    } finally {
      queue.inFlight--;
      this.pump(queue);
    }
  }

  /** Stops admissions on `queue`'s key until `untilMs`, for every process sharing the store. */
  private async pause(caller: Caller, queue: KeyQueue, untilMs: number, reason: 'retry-after' | 'headers'): Promise<void> {
    const now = caller.clock.now();
    if (untilMs <= now) return;
    let extended = false;
    await this.update(
      queue,
      now,
      (state) => {
        extended = untilMs > state.pausedUntil;
        return extended ? { ...state, pausedUntil: untilMs } : state;
      },
      untilMs - now,
    );
    if (!extended) return;
    caller.events.emit('limit-pause', { id: caller.id, key: queue.key, untilMs, pauseMs: untilMs - now, reason });
    // Waiters that cannot outlast the pause learn it now, not when their time is up.
    for (let i = queue.first; i < queue.waiters.length; i++) {
      const waiter = queue.waiters[i] as Waiter;
      if (!waiter.gone && waiter.latestAt < untilMs) {
        this.leave(queue, waiter, this.refuse(waiter.caller, queue, 'pause', untilMs - now, `${queue.key} is paused for ${untilMs - now} ms by the upstream's rate limit, past this call's ${waiter.bound}`));
      }
    }
  }

  private async tryOnce(caller: Caller, queue: KeyQueue, cost: number): Promise<Ticket> {
    if (this.slotsFull(queue)) {
      throw this.refuse(caller, queue, 'concurrency', undefined, `${queue.inFlight} requests already in flight on ${queue.key}`);
    }
    queue.inFlight++;
    let decision: Decision;
    try {
      decision = await this.admit(queue, cost, caller.clock.now());
    } catch (error) {
      queue.inFlight--;
      throw error;
    }
    if (decision.admitted) return this.ticket(queue, cost, 0);
    queue.inFlight--;
    throw this.refuse(caller, queue, decision.limit, decision.waitMs, `${queue.key} is over its ${decision.limit} limit`);
  }

  /**
   * Admits waiters from the head of the queue while it can, then arms one
   * timer for when the head could go. Never runs twice at once per key: a
   * call while it runs makes it look again when done.
   */
  private pump(queue: KeyQueue): void {
    if (queue.pumping) {
      queue.again = true;
      return;
    }
    queue.pumping = true;
    void this.drain(queue).finally(() => {
      queue.pumping = false;
      if (queue.again) this.pump(queue);
      else this.forgetIfIdle(queue);
    });
  }

  private async drain(queue: KeyQueue): Promise<void> {
    for (;;) {
      queue.again = false;
      const head = this.head(queue);
      if (!head) return this.clearTimer(queue);
      if (this.slotsFull(queue)) {
        if (!head.announced) this.announce(queue, head, 'concurrency', 0);
        return; // a finish() wakes it
      }
      this.clearTimer(queue);
      const now = head.caller.clock.now();
      queue.inFlight++;
      queue.trying = head;
      let decision: Decision;
      try {
        decision = await this.admit(queue, head.cost, now);
      } catch (error) {
        queue.inFlight--;
        this.leave(queue, head, error);
        continue;
      } finally {
        queue.trying = undefined;
      }
      if (decision.admitted) {
        if (head.gone) {
          // Aborted while the store answered: give the admission back.
          queue.inFlight--;
          const cost = head.cost;
          await this.update(queue, head.caller.clock.now(), (state) => givenBack(this.config, state, cost)).catch(() => {});
          continue;
        }
        this.leave(queue, head);
        head.resolve(this.ticket(queue, head.cost, now - head.enqueuedAt));
        continue;
      }
      queue.inFlight--;
      if (head.gone) continue;
      head.limit = decision.limit;
      if (now + decision.waitMs > head.latestAt) {
        this.leave(queue, head, this.refuse(head.caller, queue, decision.limit, decision.waitMs, `it would wait ${decision.waitMs} ms more, past its ${head.bound}`));
        continue;
      }
      if (!head.announced) this.announce(queue, head, decision.limit, decision.waitMs);
      if (queue.again) continue;
      const { clock } = head.caller;
      queue.timer = { clock, handle: clock.setTimeout(() => {
        queue.timer = undefined;
        this.pump(queue);
      }, decision.waitMs) };
      return;
    }
  }

  /** One atomic read-decide-write of the key's state. */
  private async admit(queue: KeyQueue, cost: number, now: number): Promise<Decision> {
    let decision: Decision = { admitted: false, waitMs: 0, limit: 'requests' };
    await this.update(queue, now, (state) => {
      decision = decide(this.config, state, cost, now);
      return decision.admitted ? admitted(this.config, state, cost) : state;
    });
    return decision;
  }

  /**
   * Runs `change` on the key's state brought up to `now`, atomically.
   * `change` stays pure: a distributed store may run it more than once.
   */
  private async update(queue: KeyQueue, now: number, change: (state: WindowState) => WindowState, holdMs = 0): Promise<void> {
    queue.seen = await queue.store.update<WindowState>(
      queue.storeKey,
      (current) => change(bringUp(this.config, current, now)),
      Math.max(this.keepMs, holdMs + this.keepMs),
    );
  }

  /**
   * A lower bound of how long a newcomer of `cost` waits, and for what: the
   * queue ahead admitted back to back from the state last seen. No `limit`
   * means it should go at once.
   */
  private estimate(queue: KeyQueue, cost: number, now: number): { waitMs: number; limit: LimitKind | undefined } {
    const state = bringUp(this.config, queue.seen, now);
    const { requests, tokens, concurrency } = this.config;
    const waits: Array<[LimitKind, number]> = [
      ['pause', state.pausedUntil > now ? state.pausedUntil - now : 0],
      ['requests', requests ? waitMs(requests, state.requests, queue.live + 1, now) : 0],
      ['tokens', tokens && cost > 0 ? waitMs(tokens, state.tokens, queue.liveCost + cost, now) : 0],
    ];
    let worst: { waitMs: number; limit: LimitKind | undefined } = { waitMs: 0, limit: undefined };
    for (const [limit, wait] of waits) if (wait > worst.waitMs) worst = { waitMs: wait, limit };
    // A head being admitted already holds its slot: do not count it twice.
    const ahead = queue.inFlight + queue.live - (queue.trying ? 1 : 0);
    if (!worst.limit && concurrency !== undefined && ahead >= concurrency) return { waitMs: 0, limit: 'concurrency' };
    return worst;
  }

  private refuse(caller: Caller, queue: KeyQueue, limit: LimitKind, retryAfterMs: number | undefined, why: string, retryable = true): RateLimitedError {
    caller.events.emit('limit-reject', { id: caller.id, key: queue.key, limit, retryAfterMs });
    return new RateLimitedError(limit, queue.key, retryAfterMs, `rate limit (${limit}) refused the request: ${why}`, { retryable });
  }

  /**
   * Marks `waiter` as waiting: tells listeners, and only now watches its
   * abort signal and maxWaitMs, so a request admitted at once costs neither.
   */
  private announce(queue: KeyQueue, waiter: Waiter, limit: LimitKind, wait: number): void {
    waiter.announced = true;
    waiter.limit = limit;
    const { caller } = waiter;
    caller.events.emit('limit-wait', { id: caller.id, key: queue.key, limit, waitMs: wait, queued: queue.live });
    if (caller.signal.aborted) return this.leave(queue, waiter, caller.signal.reason);
    const onAbort = () => this.leave(queue, waiter, caller.signal.reason);
    caller.signal.addEventListener('abort', onAbort, { once: true });
    const maxWait = this.config.maxWaitMs;
    const timer =
      waiter.bound === 'maxWaitMs'
        ? caller.clock.setTimeout(() => {
            const { waitMs: retryAfterMs } = this.estimate(queue, 0, caller.clock.now());
            this.leave(queue, waiter, this.refuse(caller, queue, waiter.limit, retryAfterMs || undefined, `it waited maxWaitMs (${maxWait} ms)`));
          }, Math.max(0, waiter.latestAt - caller.clock.now()))
        : undefined;
    waiter.detach = () => {
      caller.signal.removeEventListener('abort', onAbort);
      if (timer !== undefined) caller.clock.clearTimeout(timer);
    };
  }

  private enqueue(
    queue: KeyQueue,
    init: Pick<Waiter, 'caller' | 'cost' | 'enqueuedAt' | 'latestAt' | 'bound' | 'resolve' | 'reject'>,
  ): Waiter {
    const waiter: Waiter = { ...init, limit: 'requests', announced: false, gone: false, detach: () => {} };
    queue.waiters.push(waiter);
    queue.live++;
    queue.liveCost += init.cost;
    return waiter;
  }

  /** Takes `waiter` out of the queue; with `error`, rejects it and lets the next one try. */
  private leave(queue: KeyQueue, waiter: Waiter, ...error: [unknown?]): void {
    if (waiter.gone) return;
    const wasHead = this.head(queue) === waiter;
    waiter.gone = true;
    waiter.detach();
    queue.live--;
    queue.liveCost -= waiter.cost;
    if (error.length === 0) return;
    waiter.reject(error[0]);
    if (wasHead) this.pump(queue);
  }

  private head(queue: KeyQueue): Waiter | undefined {
    const { waiters } = queue;
    while (queue.first < waiters.length && (waiters[queue.first] as Waiter).gone) queue.first++;
    if (queue.first > 1024 && queue.first * 2 > waiters.length) {
      waiters.splice(0, queue.first);
      queue.first = 0;
    }
    return waiters[queue.first];
  }

  private slotsFull(queue: KeyQueue): boolean {
    return this.config.concurrency !== undefined && queue.inFlight >= this.config.concurrency;
  }

  private ticket(queue: KeyQueue, reserved: number, waitedMs: number): TicketRecord {
    return { key: queue.key, reserved, waitedMs, queue, finished: false };
  }

  private clearTimer(queue: KeyQueue): void {
    if (queue.timer) queue.timer.clock.clearTimeout(queue.timer.handle);
    queue.timer = undefined;
  }

  private queueFor(caller: Caller, key: string): KeyQueue {
    const store = this.config.store ?? caller.store;
    let byKey = this.queues.get(store);
    if (!byKey) this.queues.set(store, (byKey = new Map()));
    let queue = byKey.get(key);
    if (!queue) {
      queue = {
        key, storeKey: `${this.config.prefix}:${key}`, store, waiters: [], first: 0, live: 0, liveCost: 0, inFlight: 0,
        timer: undefined, pumping: false, again: false, trying: undefined, seen: undefined,
      };
      byKey.set(key, queue);
    }
    return queue;
  }

  /** Drops an idle key's in-process entry, so memory follows the busy keys, not every key ever seen. */
  private forgetIfIdle(queue: KeyQueue): void {
    if (queue.live > 0 || queue.inFlight > 0 || queue.timer || queue.pumping) return;
    const byKey = this.queues.get(queue.store);
    if (byKey?.get(queue.key) === queue) byKey.delete(queue.key);
  }
}
