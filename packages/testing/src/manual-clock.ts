import type { Clock } from '@sluice/core';

/** How {@link ManualClock.run} steps time. */
export interface RunOptions {
  /** Fake milliseconds per step; I/O gets a chance to settle between steps (default 50). */
  stepMs?: number;
  /** Give up (and reject) once this much fake time has passed (default 600 000). */
  maxMs?: number;
}

/**
 * A {@link Clock} whose time moves only when the test says so. Nothing
 * global is faked, so sockets, undici and the mock upstream keep working in
 * real time while every timer on this clock waits for {@link ManualClock.advance}.
 */
export interface ManualClock extends Clock {
  /** The time it started at. */
  readonly start: number;
  /** How many timers are scheduled and not yet run or cleared. */
  readonly pending: number;
  /** When the earliest scheduled timer is due, or undefined when none is. */
  nextAt(): number | undefined;
  /**
   * Moves time forward by `ms`, running every timer that falls due, in
   * order of due time (then of scheduling), each seeing `now()` at its due
   * time. Promises do not settle in between: use {@link ManualClock.advanceAsync} for that.
   *
   * @throws RangeError when `ms` is negative or not finite
   */
  advance(ms: number): void;
  /**
   * Like {@link ManualClock.advance}, but lets promises and I/O settle
   * before each timer and after the last one, so work that a timer starts
   * (a retry's next attempt) can schedule its own timers in time to run.
   *
   * @throws RangeError when `ms` is negative or not finite
   */
  advanceAsync(ms: number): Promise<void>;
  /**
   * Steps the wall clock by `ms`, back (negative) or forward, without
   * moving timers: what an NTP step, a resumed VM or a date set by hand does
   * to `Date.now()`. `now()` reads `ms` more from then on; a timer still runs
   * after the delay it was set with, and runs none now.
   *
   * @throws RangeError when `ms` is not finite
   */
  jump(ms: number): void;
  /**
   * Lets promises and I/O make progress without moving time: yields to
   * the event loop `turns` times, running timers that are already due.
   */
  settle(turns?: number): Promise<void>;
  /**
   * Lets promises and I/O make progress, without moving time, until
   * `condition` holds.
   *
   * @throws Error when it still does not hold after `maxTurns` event-loop turns
   */
  until(condition: () => boolean, maxTurns?: number): Promise<void>;
  /**
   * Advances time in steps, settling between them, until `promise` settles,
   * and returns it. Use it for a call that waits on any number of timers.
   *
   * @throws Error when `promise` is still pending after `maxMs` of fake time
   */
  run<T>(promise: Promise<T>, options?: RunOptions): Promise<T>;
}

interface Timer {
  at: number;
  seq: number;
  callback: () => void;
}

/** The handle returned by {@link ManualClock.setTimeout}: inert `ref`/`unref` so code written for Node timers runs unchanged. */
interface ManualTimerHandle {
  readonly id: number;
  ref(): ManualTimerHandle;
  unref(): ManualTimerHandle;
  hasRef(): boolean;
}

// Captured at import, before a test can install vi.useFakeTimers(), so
// settling still yields to the real event loop under fake timers.
const realSetImmediate = globalThis.setImmediate;
const yieldTurn = () => new Promise<void>((resolve) => realSetImmediate(resolve));

// A timer that keeps re-arming itself at 0 ms would make advance() spin forever.
const maxTimersPerAdvance = 100_000;

/**
 * Creates a {@link ManualClock} starting at `start` (epoch ms; default
 * 2025-06-01T12:00:00Z, a whole second so HTTP-date `Retry-After` values
 * convert exactly).
 *
 * @param start - the initial `now()`
 * @example
 * ```ts
 * const clock = manualClock();
 * const llm = createPipeline({ transport, clock }).use(retry());
 * upstream.enqueue({ kind: 'status', status: 503 });
 * const reply = await clock.run(llm.complete(chat('Hi')));
 * ```
 */
export function manualClock(start = Date.UTC(2025, 5, 1, 12, 0, 0)): ManualClock {
  let time = start;
  // What jump() added to the wall clock: now() is `time + stepped`; timers run on `time`.
  let stepped = 0;
  let seq = 0;
  const timers = new Map<number, Timer>();

  const checkMs = (ms: number) => {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`manualClock: cannot advance by ${ms} ms`);
  };
  const nextDue = (until: number): [number, Timer] | undefined => {
    let best: [number, Timer] | undefined;
    for (const entry of timers) {
      const timer = entry[1];
      if (timer.at > until) continue;
      if (best === undefined || timer.at < best[1].at || (timer.at === best[1].at && timer.seq < best[1].seq)) best = entry;
    }
    return best;
  };
  const fire = (id: number, timer: Timer) => {
    timers.delete(id);
    time = Math.max(time, timer.at);
    timer.callback();
  };
  const runDue = (until: number) => {
    for (let ran = 0; ; ran++) {
      if (ran > maxTimersPerAdvance) throw new Error(`manualClock: over ${maxTimersPerAdvance} timers ran without time moving on`);
      const next = nextDue(until);
      if (next === undefined) return;
      fire(...next);
    }
  };

  const clock: ManualClock = {
    start,
    now: () => time + stepped,
    setTimeout(callback, ms) {
      const id = ++seq;
      // A NaN or negative delay runs at the current time, as Node's does.
      const delay = Number.isFinite(ms) && ms > 0 ? ms : 0;
      timers.set(id, { at: time + delay, seq: id, callback });
      const handle: ManualTimerHandle = { id, ref: () => handle, unref: () => handle, hasRef: () => true };
      return handle;
    },
    clearTimeout(handle) {
      const id = (handle as ManualTimerHandle | undefined)?.id;
      if (typeof id === 'number') timers.delete(id);
    },
    get pending() {
      return timers.size;
    },
    nextAt() {
      const next = nextDue(Infinity)?.[1].at;
      return next === undefined ? undefined : next + stepped;
    },
    jump(ms) {
      if (!Number.isFinite(ms)) throw new RangeError(`manualClock: cannot jump by ${ms} ms`);
      stepped += ms;
    },
    advance(ms) {
      checkMs(ms);
      const target = time + ms;
      runDue(target);
      time = target;
    },
    async advanceAsync(ms) {
      checkMs(ms);
      const target = time + ms;
      await clock.settle();
      for (let ran = 0; ; ran++) {
        if (ran > maxTimersPerAdvance) throw new Error(`manualClock: over ${maxTimersPerAdvance} timers ran in one advance`);
        const next = nextDue(target);
        if (next === undefined) break;
        fire(...next);
        await clock.settle();
      }
      time = target;
      await clock.settle();
    },
    async settle(turns = 10) {
      for (let turn = 0; turn < turns; turn++) {
        runDue(time);
        await yieldTurn();
      }
      runDue(time);
    },
    async until(condition, maxTurns = 20_000) {
      for (let turn = 0; !condition(); turn++) {
        if (turn >= maxTurns) throw new Error(`manualClock.until: the condition did not hold within ${maxTurns} event-loop turns`);
        runDue(time);
        await yieldTurn();
      }
    },
    async run(promise, options = {}) {
      const { stepMs = 50, maxMs = 600_000 } = options;
      if (!(stepMs > 0) || !Number.isFinite(stepMs)) throw new RangeError(`manualClock.run: stepMs must be a positive number, got ${stepMs}`);
      let settled = false;
      promise.then(
        () => (settled = true),
        () => (settled = true),
      );
      for (let elapsed = 0; ; elapsed += stepMs) {
        await clock.settle();
        if (settled) return promise;
        if (elapsed >= maxMs) throw new Error(`manualClock.run: the promise was still pending after ${maxMs} ms of clock time`);
        await clock.advanceAsync(stepMs);
      }
    },
  };
  return clock;
}
