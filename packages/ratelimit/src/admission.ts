import type { Caller, KeyQueue } from './key-queue.js';
import type { LimiterConfig } from './options.js';
import { admitted, bringUp, corrected, type Decision, decide, givenBack, paused, type WindowState } from './window-state.js';

/**
 * The limiter's admission: every read and write of a key's shared window
 * state, each one atomic `store.update` with a pure reducer from
 * window-state.ts. It decides; it never waits. Queues, slots and timers are
 * the scheduler's (limiter.ts).
 */
export class Admission {
  constructor(private readonly config: LimiterConfig) {}

  /**
   * Admits a request of `cost` tokens now, or says how long it must wait
   * and for what; with the state's `at`, the time it was booked at.
   */
  async admit(queue: KeyQueue, cost: number, now: number): Promise<[Decision, number]> {
    let decision: Decision = { admitted: false, waitMs: 0, limit: 'requests' };
    const state = await this.update(queue, now, (current) => {
      decision = decide(this.config, current, cost);
      return decision.admitted ? admitted(this.config, current, cost) : current;
    });
    return [decision, state.at];
  }

  /**
   * {@link Admission.admit} for the queue's one fast-path admission, with
   * the reducer the queue made once ({@link KeyQueue.admitFast}) instead of
   * a closure per call.
   */
  async admitFast(queue: KeyQueue): Promise<[Decision, number]> {
    const state = await queue.store.update<WindowState>(queue.storeKey, queue.admitFast, this.keepMs());
    queue.seen = state;
    return [queue.fastDecision as Decision, state.at];
  }

  /** The reducer behind {@link KeyQueue.admitFast}: reads the fast admission's cost and time from the queue. */
  fastReducer(queue: KeyQueue, current: WindowState | undefined): WindowState {
    const state = bringUp(this.config, current, queue.fastNow);
    const decision = decide(this.config, state, queue.fastCost);
    queue.fastDecision = decision;
    return decision.admitted ? admitted(this.config, state, queue.fastCost) : state;
  }

  /** Takes back an admission whose call aborted before it was sent; a store failure here only leaves it booked. */
  async giveBack(queue: KeyQueue, caller: Caller, cost: number, bookedAt: number): Promise<void> {
    await this.update(queue, caller.clock.now(), (state) => givenBack(this.config, state, cost, bookedAt)).catch(() => {});
  }

  /** Corrects a reservation booked at `bookedAt` by `delta` tokens (usage minus reservation). */
  async correct(queue: KeyQueue, caller: Caller, delta: number, bookedAt: number): Promise<void> {
    await this.update(queue, caller.clock.now(), (state) => corrected(this.config, state, delta, bookedAt));
  }

  /** Stops admissions on the key until `untilMs`, for every process sharing the store; whether that extended the pause. */
  async pause(queue: KeyQueue, now: number, untilMs: number): Promise<boolean> {
    let extended = false;
    await this.update(
      queue,
      now,
      (current) => {
        const next = paused(current, untilMs);
        extended = next !== current;
        return next;
      },
      untilMs - now,
    );
    return extended;
  }

  /**
   * Runs `change` on the key's state brought up to `now`, atomically.
   * `change` stays pure: a distributed store may run it more than once.
   */
  private async update(queue: KeyQueue, now: number, change: (state: WindowState) => WindowState, holdMs = 0): Promise<WindowState> {
    const state = await queue.store.update<WindowState>(
      queue.storeKey,
      (current) => change(bringUp(this.config, current, now)),
      this.keepMs(holdMs),
    );
    queue.seen = state;
    return state;
  }

  /** How long a write keeps the key's state: one window (its entries are gone by then), or the pause it sets. */
  private keepMs(holdMs = 0): number {
    const { requests, tokens } = this.config;
    return Math.max(requests?.windowMs ?? 0, tokens?.windowMs ?? 0, holdMs, 1);
  }
}
