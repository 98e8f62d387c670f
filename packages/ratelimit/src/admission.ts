import type { CompletionContext, Store } from '@sluice/core';
import type { Caller, KeyQueue } from './key-queue.js';
import type { LimiterConfig } from './options.js';
import {
  admitNow,
  admitted,
  bringUp,
  corrected,
  type Decision,
  decide,
  givenBack,
  keepMs,
  paused,
  type WindowState,
} from './window-state.js';

/**
 * An admission: go or wait, and the time the request was booked at
 * (`undefined` when nothing was booked: refused, or admitted unrecorded
 * because the store failed under the `open` policy).
 */
export type Admitted = [Decision, number | undefined];

/**
 * The limiter's admission: every read and write of a key's shared window
 * state, each one atomic update with a pure reducer from window-state.ts,
 * through core's keyed state (namespace, store, TTL, store-failure policy).
 * It decides; it never waits. Queues, slots and timers are the
 * scheduler's (limiter.ts).
 */
export class Admission {
  private readonly ttlMs: (state: WindowState) => number;

  constructor(private readonly config: LimiterConfig) {
    this.ttlMs = (state) => keepMs(config, state);
  }

  /** The store the caller's records are in (the limiter's own, else the call's): its in-process queues are kept per store. */
  storeOf(caller: Caller): Store {
    return this.config.state.storeFor(asContext(caller));
  }

  /**
   * Admits a request of `cost` tokens now, or says how long it must wait
   * and for what.
   *
   * @throws StoreError when the store fails under the `closed` policy
   */
  async admit(queue: KeyQueue, caller: Caller, cost: number, now: number): Promise<Admitted> {
    let decision: Decision = { admitted: false, waitMs: 0, limit: 'requests' };
    const state = await this.update(queue, caller, now, 'admit', (current) => {
      decision = decide(this.config, current, cost);
      return decision.admitted ? admitted(this.config, current, cost) : current;
    });
    return state ? [decision, decision.admitted ? state.at : undefined] : [admitNow, undefined];
  }

  /**
   * {@link Admission.admit} for the queue's one fast-path admission, with
   * the reducer the queue made once ({@link KeyQueue.admitFast}) instead of
   * a closure per call.
   *
   * @throws StoreError when the store fails under the `closed` policy
   */
  async admitFast(queue: KeyQueue, caller: Caller): Promise<Admitted> {
    const state = await this.config.state.update(asContext(caller), queue.storeKey, queue.admitFast, { ttlMs: this.ttlMs });
    if (!state) return [admitNow, undefined];
    queue.seen = state;
    const decision = queue.fastDecision as Decision;
    return [decision, decision.admitted ? state.at : undefined];
  }

  /** The reducer behind {@link KeyQueue.admitFast}: reads the fast admission's cost and time from the queue. */
  fastReducer(queue: KeyQueue, current: WindowState | undefined): WindowState {
    const state = bringUp(this.config, current, queue.fastNow);
    const decision = decide(this.config, state, queue.fastCost);
    queue.fastDecision = decision;
    return decision.admitted ? admitted(this.config, state, queue.fastCost) : state;
  }

  /** Takes back an admission whose call aborted before it was sent; a store failure here only leaves it booked. */
  async giveBack(queue: KeyQueue, caller: Caller, cost: number, bookedAt: number | undefined): Promise<void> {
    if (bookedAt === undefined) return;
    await this.update(queue, caller, caller.clock.now(), 'settle', (state) => givenBack(this.config, state, cost, bookedAt)).catch(() => {});
  }

  /** Corrects a reservation booked at `bookedAt` by `delta` tokens (usage minus reservation); nothing when it was never booked. */
  async correct(queue: KeyQueue, caller: Caller, delta: number, bookedAt: number | undefined): Promise<void> {
    if (bookedAt === undefined) return;
    await this.update(queue, caller, caller.clock.now(), 'settle', (state) => corrected(this.config, state, delta, bookedAt));
  }

  /** Stops admissions on the key until `untilMs`, for every process sharing the store; whether that extended the pause. */
  async pause(queue: KeyQueue, caller: Caller, untilMs: number): Promise<boolean> {
    let extended = false;
    const state = await this.update(queue, caller, caller.clock.now(), 'settle', (current) => {
      const next = paused(current, untilMs);
      extended = next !== current;
      return next;
    });
    return state !== undefined && extended;
  }

  /**
   * Runs `change` on the key's state brought up to `now`, atomically;
   * `undefined` when the store failed and the policy let the call go on.
   * `change` stays pure: a distributed store may run it more than once.
   */
  private async update(
    queue: KeyQueue,
    caller: Caller,
    now: number,
    phase: 'admit' | 'settle',
    change: (state: WindowState) => WindowState,
  ): Promise<WindowState | undefined> {
    const state = await this.config.state.update<WindowState>(
      asContext(caller),
      queue.storeKey,
      (current) => change(bringUp(this.config, current, now)),
      { ttlMs: this.ttlMs, phase },
    );
    if (state) queue.seen = state;
    return state;
  }
}

/**
 * A caller as the call it is: in the pipeline it is the call's whole
 * context, and keyed state reads only what {@link Caller} has (its store,
 * events, clock and id).
 */
const asContext = (caller: Caller): CompletionContext => caller as CompletionContext;
