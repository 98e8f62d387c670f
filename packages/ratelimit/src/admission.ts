import type { CompletionContext, Store } from '@sluice/core';
import { ownCopy } from './bucket.js';
import type { Caller, KeyQueue } from './key-queue.js';
import type { LimiterConfig } from './options.js';
import {
  admitInPlace,
  admitNow,
  admitted,
  bringUp,
  corrected,
  correctInPlace,
  type Decision,
  decide,
  givenBack,
  isWindowState,
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
   * Admits requests of `costs`, in order, in one store update, up to the
   * first that must wait (its decision is the last one returned): a queue
   * whose requests fit is admitted in one round trip, not one each, and in
   * its order, since no request is decided past one that waits. Returns
   * the decisions and the time they were made (the admitted ones' booking
   * time); when the store failed and the policy lets calls go on, only the
   * first goes, unrecorded (time `undefined`), and the others stay queued.
   *
   * @throws StoreError when the store fails under the `closed` policy
   */
  async admitMany(queue: KeyQueue, caller: Caller, costs: readonly number[], now: number): Promise<[Decision[], number | undefined]> {
    let decisions: Decision[] = [];
    let decidedAt = now;
    const state = await this.update(queue, caller, now, 'admit', (current) => {
      // Fresh on every run: a distributed store may run the reducer more than once.
      decisions = [];
      decidedAt = current.at;
      let next = current;
      for (const cost of costs) {
        const decision = decide(this.config, next, cost);
        decisions.push(decision);
        if (!decision.admitted) break;
        next = admitted(this.config, next, cost);
      }
      return next;
    });
    // A store failure the policy lets through lets the first through, as a single admission would: not a whole queue.
    return state ? [decisions, decidedAt] : [[admitNow], undefined];
  }

  /**
   * {@link Admission.admit} for the queue's one fast-path admission, with
   * the reducer the queue made once ({@link KeyQueue.admitFast}) instead of
   * a closure per call.
   *
   * @throws StoreError when the store fails under the `closed` policy
   */
  admitFast(queue: KeyQueue, caller: Caller): Admitted | Promise<Admitted> {
    // At once on an in-process store: the usual admission costs no promise.
    // A reducer the store runs right now decides at the time just read
    // (and so does the store): the clock is read again only for one that
    // runs later, after a store's round trip.
    const clock = queue.fastClock;
    queue.fastClock = undefined;
    const state = this.config.state.updateNow(asContext(caller), queue.storeKey, queue.admitFast, { ttlMs: this.ttlMs, now: queue.fastNow, recordKey: queue.recordKey, slot: queue, inPlace: true });
    if (!(state instanceof Promise)) return this.fastDecided(queue, state);
    queue.fastClock = clock;
    return state.then((stored) => this.fastDecided(queue, stored));
  }

  private fastDecided(queue: KeyQueue, state: WindowState | undefined): Admitted {
    if (!state) return [admitNow, undefined];
    queue.seen = state;
    const decision = queue.fastDecision as Decision;
    return [decision, decision.admitted ? state.at : undefined];
  }

  /**
   * The reducer behind {@link KeyQueue.admitFast}: reads the fast
   * admission's cost and time from the queue. On the memory store
   * (`inPlace`) an admission books into the record itself, as most calls
   * are: no copy of its logs (64 numbers once a window is busy) a call.
   */
  fastReducer(queue: KeyQueue, current: WindowState | undefined, inPlace?: true): WindowState {
    // Decided at the time the store runs it, read once (see Admission.update).
    if (queue.fastClock) {
      queue.fastNow = Math.max(queue.fastNow, queue.fastClock.now());
      queue.fastClock = undefined;
    }
    // A record this limiter (or another on the same key) wrote through the memory store: booked where it is.
    if (inPlace && current !== undefined) {
      const booked = admitInPlace(this.config, current, queue.fastCost, queue.fastNow);
      if (booked) {
        queue.fastDecision = admitNow;
        return booked;
      }
    }
    // On an in-process store `current` is the object last seen here (checked when it was first read): no deep check again.
    const own = current !== undefined && current === queue.seen;
    const state = bringUp(this.config, current, queue.fastNow, own);
    const decision = decide(this.config, state, queue.fastCost);
    queue.fastDecision = decision;
    if (!decision.admitted) return own || isWindowState(current) ? (current as WindowState) : state;
    // The next admission may change it in place: it shares no log with what it replaced.
    return unshared(admitted(this.config, state, queue.fastCost), current);
  }

  /** Takes back an admission whose call aborted before it was sent; a store failure here only leaves it booked. */
  async giveBack(queue: KeyQueue, caller: Caller, cost: number, bookedAt: number | undefined): Promise<void> {
    if (bookedAt === undefined) return;
    await this.update(queue, caller, caller.clock.now(), 'settle', (state) => givenBack(this.config, state, cost, bookedAt)).catch(() => {});
  }

  /** Corrects a reservation booked at `bookedAt` by `delta` tokens (usage minus reservation); nothing when it was never booked. */
  async correct(queue: KeyQueue, caller: Caller, delta: number, bookedAt: number | undefined): Promise<void> {
    if (bookedAt === undefined) return;
    await this.update(
      queue,
      caller,
      caller.clock.now(),
      'settle',
      (state) => corrected(this.config, state, delta, bookedAt),
      (state, at) => correctInPlace(this.config, state, delta, bookedAt, at),
    );
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
   * Runs `change` on the key's state brought up to the time the store runs
   * it (not before `now`), atomically; `undefined` when the store failed and
   * the policy let the call go on.
   *
   * Why the time is read inside the reducer. A remote store runs it later
   * than it was called: after the rest of the turn, behind a write in
   * flight, after a stall of this process. Booked at the time of the call,
   * a request that goes out only then would be counted as if it had gone
   * earlier, and leave the window early: a later window could admit the
   * whole limit beside it. Read at the first run and kept for any re-run
   * (a conflict retry, checkedStore's second call), it keeps `change`
   * pure: the same input gives the same state.
   */
  private async update(
    queue: KeyQueue,
    caller: Caller,
    now: number,
    phase: 'admit' | 'settle',
    change: (state: WindowState) => WindowState,
    changeInPlace?: (state: WindowState, at: number) => WindowState | undefined,
  ): Promise<WindowState | undefined> {
    let at: number | undefined;
    const state = await this.config.state.update<WindowState>(
      asContext(caller),
      queue.storeKey,
      (current, inPlace) => {
        // A record a limiter wrote through the memory store, run once by it: changed where it is (see fastReducer).
        if (inPlace && changeInPlace && current !== undefined) {
          const changed = changeInPlace(current, (at ??= Math.max(now, caller.clock.now())));
          if (changed) return changed;
        }
        const own = current !== undefined && current === queue.seen;
        const up = bringUp(this.config, current, (at ??= Math.max(now, caller.clock.now())), own);
        const next = change(up);
        // Nothing changed but the time: the stored value stays as it is, so a shared store need not write
        // (a new version would make every other process's next write a conflict).
        if (next === up && (own || isWindowState(current))) return current as WindowState;
        return changeInPlace ? unshared(next, current) : next;
      },
      { ttlMs: this.ttlMs, phase, recordKey: queue.recordKey, slot: queue, inPlace: changeInPlace !== undefined },
    );
    if (state) queue.seen = state;
    return state;
  }
}

/**
 * `next` with its own copy of any log it shares with `current`, the state
 * it was made from: a state the limiter writes with `inPlace` may be
 * changed in place by a later write, which must not change an object
 * anyone else holds (a state written by `store.set`, say). The requests
 * log of an admission, and the tokens log once tokens are booked, are new
 * already, so the fast path copies nothing.
 */
function unshared(next: WindowState, current: WindowState | undefined): WindowState {
  if (current === undefined || next === current) return next;
  const requests = next.requests === current.requests ? ownCopy(next.requests) : next.requests;
  const tokens = next.tokens === current.tokens ? ownCopy(next.tokens) : next.tokens;
  return requests === next.requests && tokens === next.tokens ? next : { ...next, requests, tokens };
}

/**
 * A caller as the call it is: in the pipeline it is the call's whole
 * context, and keyed state reads only what {@link Caller} has (its store,
 * events, clock and id).
 */
const asContext = (caller: Caller): CompletionContext => caller as CompletionContext;
