import { abortReason, onAbort } from '@sluice/core/kit';
import { Admission } from './admission.js';
import { type LimitKind, LimitRejectedError } from './errors.js';
import { type Caller, type KeyQueue, KeyQueues, type Ticket, type Waiter } from './key-queue.js';
import type { LimiterConfig } from './options.js';
import { bringUp, type Decision, estimate, wouldAdmit } from './window-state.js';

export type { Caller, Ticket } from './key-queue.js';

/** How an admitted request ended, for {@link Limiter.finish}. */
export interface Finish {
  /** Tokens it really used; `undefined` keeps the reservation as it is. */
  usedTokens?: number;
  /** Pause the key until this `clock.now()`, and why. */
  pause?: { untilMs: number; reason: 'retry-after' | 'headers' };
}

interface TicketRecord extends Ticket {
  readonly queue: KeyQueue;
  finished: boolean;
}

type Refusal = { waitMs: number; limit: LimitKind };

const noop = () => {};

/** Most waiters one admission decides; each costs the reducer a booking, so a group stays small. */
const maxGroup = 64;

/**
 * The limiter behind the middleware, as a scheduler: the concurrency slots
 * and FIFO wait queues in this process, waking waiters with timers on the
 * callers' clock. What may go is decided by {@link Admission}, against the
 * window state in the store. One instance per `rateLimit()`.
 */
export class Limiter {
  private readonly queues: KeyQueues;
  private readonly admission: Admission;

  constructor(private readonly config: LimiterConfig) {
    const admission = new Admission(config);
    this.admission = admission;
    this.queues = new KeyQueues(config.prefix, (queue, current, inPlace) => admission.fastReducer(queue, current, inPlace), config.state.namespace);
  }

  /**
   * Waits (or, in reject mode, does not) until `key` admits a request of
   * `cost` tokens, and takes one concurrency slot.
   *
   * @throws LimitRejectedError when it is refused; the signal's reason when the call aborts
   */
  acquire(caller: Caller, key: string, cost: number): Promise<Ticket> {
    try {
      const ticket = this.acquireNow(caller, key, cost);
      return ticket instanceof Promise ? ticket : Promise.resolve(ticket);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * {@link Limiter.acquire}, with the ticket itself (not a promise) when
   * the call is admitted at once on an in-process store: the usual call
   * then costs no promise and no await. May throw instead of rejecting.
   *
   * @throws LimitRejectedError when it is refused; the signal's reason when the call aborts
   */
  acquireNow(caller: Caller, key: string, cost: number): Ticket | Promise<Ticket> {
    const queue = this.queues.get(this.admission.storeOf(caller), key);
    const { tokens } = this.config;
    // First in line (nobody queued, no admission with the store), a free slot, and room as last seen.
    if (
      this.config.mode === 'wait' && queue.live === 0 && !queue.fastBusy && !this.slotsFull(queue) &&
      !(tokens && cost > tokens.limit) && abortReason(caller) === undefined
    ) {
      const now = caller.clock.now();
      if (wouldAdmit(this.config, queue.seen, cost, now)) return this.fast(caller, queue, cost, now);
    }
    return this.wait(caller, queue, cost);
  }

  private fast(caller: Caller, queue: KeyQueue, cost: number, now: number): Ticket | Promise<Ticket> {
    queue.inFlight++;
    queue.fastBusy = true;
    queue.fastCost = cost;
    queue.fastNow = now;
    queue.fastClock = caller.clock;
    let answer: [Decision, number | undefined] | Promise<[Decision, number | undefined]>;
    try {
      answer = this.admission.admitFast(queue, caller);
    } catch (error) {
      return this.fastFailed(queue, error);
    }
    if (answer instanceof Promise) {
      return answer.then(
        ([decision, bookedAt]) => this.fastDecided(caller, queue, cost, now, decision, bookedAt),
        (error: unknown) => this.fastFailed(queue, error),
      );
    }
    return this.fastDecided(caller, queue, cost, now, answer[0], answer[1]);
  }

  private fastFailed(queue: KeyQueue, error: unknown): never {
    queue.fastBusy = false;
    queue.inFlight--;
    if (queue.live > 0) this.pump(queue);
    throw error;
  }

  private fastDecided(caller: Caller, queue: KeyQueue, cost: number, now: number, decision: Decision, bookedAt: number | undefined): Ticket | Promise<Ticket> {
    queue.fastBusy = false;
    if (decision.admitted) {
      const aborted = abortReason(caller);
      if (aborted !== undefined) return this.abortedAtOnce(caller, queue, cost, bookedAt, aborted);
      // Those who queued while the store answered were held back for it.
      if (queue.live > 0) this.pump(queue);
      return this.ticket(queue, cost, 0, bookedAt);
    }
    queue.inFlight--;
    try {
      return this.enter(caller, queue, cost, now, decision, true); // pumps once it holds the head
    } catch (error) {
      if (queue.live > 0) this.pump(queue);
      throw error;
    }
  }

  /** Admitted while the call aborted: the slot and the admission go back. */
  private async abortedAtOnce(caller: Caller, queue: KeyQueue, cost: number, bookedAt: number | undefined, aborted: unknown): Promise<never> {
    queue.inFlight--;
    await this.admission.giveBack(queue, caller, cost, bookedAt);
    if (queue.live > 0) this.pump(queue);
    throw aborted;
  }

  private async wait(caller: Caller, queue: KeyQueue, cost: number): Promise<Ticket> {
    if (abortReason(caller) !== undefined) throw abortReason(caller);
    const { tokens } = this.config;
    if (tokens && cost > tokens.limit) {
      throw this.refuse(caller, queue, 'tokens', undefined, `a reservation of ${cost} tokens can never fit ${tokens.limit} tokens per ${tokens.windowMs} ms; lower max_tokens or the prompt`, false);
    }
    if (this.config.mode === 'reject') return this.tryOnce(caller, queue, cost);
    const now = caller.clock.now();
    return this.enter(caller, queue, cost, now, this.expectedWait(queue, cost, now), false);
  }

  /**
   * Queues a request, unless it must wait and cannot: the queue is full, or
   * its wait (`refusal`, known or estimated) would pass its maxWaitMs or
   * deadline. `atHead` for one refused on the fast path, first in line.
   */
  private enter(caller: Caller, queue: KeyQueue, cost: number, now: number, refusal: Refusal | undefined, atHead: boolean): Promise<Ticket> {
    if (refusal && queue.live >= this.config.maxQueue) {
      throw this.refuse(caller, queue, 'queue', undefined, `${queue.live} requests already wait on ${queue.key}`);
    }
    const remaining = caller.remainingMs();
    const bound = remaining <= this.config.maxWaitMs ? 'deadline' : 'maxWaitMs';
    const latestAt = now + Math.min(remaining, this.config.maxWaitMs);
    if (refusal && now + refusal.waitMs > latestAt) {
      throw this.refuse(caller, queue, refusal.limit, refusal.waitMs, `it would wait at least ${refusal.waitMs} ms, past its ${bound}`);
    }
    return new Promise<Ticket>((resolve, reject) => {
      const waiter: Waiter = {
        caller, cost, enqueuedAt: now, latestAt, bound, limit: 'requests', announced: false, gone: false, resolve, reject, detach: noop,
      };
      queue.add(waiter, atHead);
      if (refusal) this.announce(queue, waiter, refusal.limit, refusal.waitMs);
      // Behind others it changes nothing for the head, whose timer or slot wakes the queue.
      if ((atHead || queue.live === 1) && !waiter.gone) this.pump(queue);
    });
  }

  /**
   * {@link Limiter.finish}, at once (`undefined`) when there is nothing to
   * write (no pause, no token correction): the usual call settles without a promise.
   */
  finishNow(ticket: Ticket, caller: Caller, how: Finish): Promise<void> | undefined {
    const record = ticket as TicketRecord;
    if (record.finished) return undefined;
    if (how.pause || (this.config.tokens && how.usedTokens !== undefined && how.usedTokens !== record.reserved)) {
      return this.finish(ticket, caller, how);
    }
    record.finished = true;
    const { queue } = record;
    queue.inFlight--;
    if (queue.live > 0) this.pump(queue);
    return undefined;
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
      if (this.config.tokens && how.usedTokens !== undefined && how.usedTokens !== record.reserved) {
        await this.admission.correct(queue, caller, how.usedTokens - record.reserved, record.bookedAt);
      }
    } finally {
      queue.inFlight--;
      if (queue.live > 0) this.pump(queue);
    }
  }

  /** Stops admissions on `queue`'s key until `untilMs`, for every process sharing the store. */
  private async pause(caller: Caller, queue: KeyQueue, untilMs: number, reason: 'retry-after' | 'headers'): Promise<void> {
    const now = caller.clock.now();
    if (untilMs <= now) return;
    if (!(await this.admission.pause(queue, caller, untilMs))) return;
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
    let bookedAt: number | undefined;
    try {
      [decision, bookedAt] = await this.admission.admit(queue, caller, cost, caller.clock.now());
    } catch (error) {
      queue.inFlight--;
      throw error;
    }
    if (decision.admitted) {
      const aborted = abortReason(caller);
      if (aborted === undefined) return this.ticket(queue, cost, 0, bookedAt);
      queue.inFlight--;
      await this.admission.giveBack(queue, caller, cost, bookedAt);
      throw aborted;
    }
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
    });
  }

  private async drain(queue: KeyQueue): Promise<void> {
    for (;;) {
      queue.again = false;
      const head = queue.head();
      if (!head) return this.clearTimer(queue);
      // The fast path's admission goes first; its answer pumps again.
      if (queue.fastBusy) return;
      if (this.slotsFull(queue)) {
        if (!head.announced) this.announce(queue, head, 'concurrency', 0);
        return; // a finish() wakes it
      }
      this.clearTimer(queue);
      const now = head.caller.clock.now();
      const group = this.group(queue);
      queue.inFlight += group.length;
      queue.trying = group.length;
      let decisions: Decision[];
      let decidedAt: number | undefined;
      try {
        [decisions, decidedAt] = await this.admission.admitMany(queue, head.caller, group.map((waiter) => waiter.cost), now);
      } catch (error) {
        queue.inFlight -= group.length;
        this.leave(queue, head, error);
        continue;
      } finally {
        queue.trying = 0;
      }
      // Those decided past the last decision were not tried: their slots go back, they stay queued.
      queue.inFlight -= group.length - decisions.length;
      let refused: { waiter: Waiter; decision: Exclude<Decision, { admitted: true }> } | undefined;
      for (let i = 0; i < decisions.length; i++) {
        const waiter = group[i] as Waiter;
        const decision = decisions[i] as Decision;
        if (!decision.admitted) {
          queue.inFlight--;
          refused = { waiter, decision };
          break;
        }
        const aborted = abortReason(waiter.caller);
        if (waiter.gone || aborted !== undefined) {
          // Aborted while the store answered: an aborted call takes no slot, so the admission goes back.
          queue.inFlight--;
          if (!waiter.gone) this.leave(queue, waiter, aborted);
          await this.admission.giveBack(queue, waiter.caller, waiter.cost, decidedAt);
          continue;
        }
        this.leave(queue, waiter);
        waiter.resolve(this.ticket(queue, waiter.cost, (decidedAt ?? now) - waiter.enqueuedAt, decidedAt));
      }
      if (!refused) continue;
      const { waiter: first, decision } = refused;
      // Everything decided before it went, so it is the head now (unless it left meanwhile).
      if (first.gone) continue;
      first.limit = decision.limit;
      if ((decidedAt ?? now) + decision.waitMs > first.latestAt) {
        this.leave(queue, first, this.refuse(first.caller, queue, decision.limit, decision.waitMs, `it would wait ${decision.waitMs} ms more, past its ${first.bound}`));
        continue;
      }
      if (!first.announced) this.announce(queue, first, decision.limit, decision.waitMs);
      if (queue.again) continue;
      const { clock } = first.caller;
      queue.timer = { clock, handle: clock.setTimeout(() => {
        queue.timer = undefined;
        this.pump(queue);
      }, decision.waitMs) };
      return;
    }
  }

  /**
   * The waiters the next admission decides, in queue order: the head and
   * those right behind it, as many as there are free slots (at most
   * {@link maxGroup}). With a remote store each admission is a round trip,
   * so a queue that fits goes in one, not one request after another.
   */
  private group(queue: KeyQueue): Waiter[] {
    const { concurrency } = this.config;
    const room = Math.min(maxGroup, concurrency === undefined ? maxGroup : concurrency - queue.inFlight);
    const group: Waiter[] = [];
    for (let i = queue.first; i < queue.waiters.length && group.length < room; i++) {
      const waiter = queue.waiters[i] as Waiter;
      if (!waiter.gone) group.push(waiter);
    }
    return group;
  }

  /**
   * A lower bound of how long a newcomer of `cost` waits, and for what: the
   * queue ahead (and a fast-path admission with the store) admitted back to
   * back from the state last seen. `undefined` means it should go at once.
   */
  private expectedWait(queue: KeyQueue, cost: number, now: number): Refusal | undefined {
    const pending = queue.fastBusy ? 1 : 0;
    const ahead = { requests: queue.live + pending, tokens: queue.liveCost + pending * queue.fastCost };
    const refusal = estimate(this.config, bringUp(this.config, queue.seen, now), ahead, cost, now);
    if (refusal) return refusal;
    // A head being admitted already holds its slot: do not count it twice.
    const holders = queue.inFlight + queue.live - queue.trying;
    const { concurrency } = this.config;
    return concurrency !== undefined && holders >= concurrency ? { waitMs: 0, limit: 'concurrency' } : undefined;
  }

  private refuse(caller: Caller, queue: KeyQueue, limit: LimitKind, retryAfterMs: number | undefined, why: string, retryable = true): LimitRejectedError {
    caller.events.emit('limit-reject', { id: caller.id, key: queue.key, limit, retryAfterMs });
    return new LimitRejectedError(limit, queue.key, retryAfterMs, `rate limit (${limit}) refused the request: ${why}`, retryable);
  }

  /**
   * Marks `waiter` as waiting: tells listeners (`queued` counts the waiting
   * requests, this one included, not those being admitted right now), and
   * only now watches its abort and maxWaitMs, so a request admitted at
   * once costs neither.
   */
  private announce(queue: KeyQueue, waiter: Waiter, limit: LimitKind, wait: number): void {
    waiter.announced = true;
    waiter.limit = limit;
    queue.waiting++;
    const { caller } = waiter;
    caller.events.emit('limit-wait', { id: caller.id, key: queue.key, limit, waitMs: wait, queued: queue.waiting });
    if (abortReason(caller) !== undefined) return this.leave(queue, waiter, abortReason(caller));
    const unwatch = onAbort(caller, () => this.leave(queue, waiter, abortReason(caller)));
    const maxWait = this.config.maxWaitMs;
    const timer =
      waiter.bound === 'maxWaitMs'
        ? caller.clock.setTimeout(() => {
            const retryAfterMs = this.expectedWait(queue, 0, caller.clock.now())?.waitMs;
            this.leave(queue, waiter, this.refuse(caller, queue, waiter.limit, retryAfterMs || undefined, `it waited maxWaitMs (${maxWait} ms)`));
          }, Math.max(0, waiter.latestAt - caller.clock.now()))
        : undefined;
    waiter.detach = () => {
      unwatch();
      if (timer !== undefined) caller.clock.clearTimeout(timer);
    };
  }

  /** Takes `waiter` out of the queue; with `error`, rejects it and lets the next one try. */
  private leave(queue: KeyQueue, waiter: Waiter, ...error: [unknown?]): void {
    if (waiter.gone) return;
    const wasHead = queue.head() === waiter;
    queue.remove(waiter);
    waiter.detach();
    if (error.length === 0) return;
    waiter.reject(error[0]);
    if (wasHead) this.pump(queue);
  }

  private slotsFull(queue: KeyQueue): boolean {
    return this.config.concurrency !== undefined && queue.inFlight >= this.config.concurrency;
  }

  private ticket(queue: KeyQueue, reserved: number, waitedMs: number, bookedAt: number | undefined): TicketRecord {
    return { key: queue.key, reserved, waitedMs, queue, bookedAt, finished: false };
  }

  private clearTimer(queue: KeyQueue): void {
    if (queue.timer) queue.timer.clock.clearTimeout(queue.timer.handle);
    queue.timer = undefined;
  }
}
