/**
 * Where middleware take time from. Inject a fake one (or use
 * `vi.useFakeTimers()`, which the default follows) so tests never sleep.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/**
 * The real clock. It looks the globals up at every call, so
 * `vi.useFakeTimers()` installed after import still takes effect.
 */
export const systemClock: Clock = {
  now: () => Date.now(),
  // Timers are not unref'd: a call waiting on a backoff, a limit or a
  // deadline must keep a one-shot script alive until it settles.
  // Housekeeping that nothing waits on uses {@link unrefTimer}.
  // Node runs a delay over 2^31 - 1 ms after 1 ms (with a warning): a
  // `timeoutMs: 1e12` meant "never" would fire at once. Such a delay is
  // waited in steps instead.
  setTimeout: (callback, ms) => (ms > maxDelayMs ? new LongTimer(callback, ms) : setTimeout(callback, ms)),
  clearTimeout: (handle) => (handle instanceof LongTimer ? handle.clear() : clearTimeout(handle as ReturnType<typeof setTimeout>)),
};

/** The longest delay a runtime timer takes as it is (2^31 - 1 ms, about 24.8 days). */
const maxDelayMs = 2_147_483_647;

/** A timer for a delay longer than {@link maxDelayMs}: runtime timers of at most that, one after another. */
class LongTimer {
  private current: ReturnType<typeof setTimeout> | undefined;
  private unrefed = false;
  private readonly dueAt: number;

  constructor(
    private readonly callback: () => void,
    ms: number,
  ) {
    this.dueAt = Date.now() + ms;
    this.arm();
  }

  /** Lets it not keep the process alive, as a runtime timer's `unref` (see {@link unrefTimer}). */
  unref(): this {
    this.unrefed = true;
    (this.current as { unref?: () => void } | undefined)?.unref?.();
    return this;
  }

  clear(): void {
    clearTimeout(this.current);
    this.current = undefined;
  }

  private arm(): void {
    const left = this.dueAt - Date.now();
    this.current = left > maxDelayMs ? setTimeout(() => this.arm(), maxDelayMs) : setTimeout(this.callback, Math.max(0, left));
    if (this.unrefed) (this.current as { unref?: () => void }).unref?.();
  }
}

/**
 * How far ahead of the clock a time stored as already past (when a circuit
 * opened, when a request was booked, when a probe started) may be and still
 * be taken as it is: processes sharing a store have clocks a little apart.
 * Further ahead than this, the clock stepped back past it (an NTP step, a
 * VM resumed, a date set by hand), and state that waits for the clock to
 * catch up would hold for as long as the step: an hour's step back kept a
 * circuit open, a rate limit full and every router deployment cooling for
 * an hour.
 */
export const clockSkewMs = 60_000;

/**
 * Whether `at`, a time that has passed when it was stored, is further ahead
 * of `now` than clocks drift apart ({@link clockSkewMs}): the clock stepped
 * back past it, and what was timed from it is to be taken as over.
 *
 * @param at - the stored time (a booking, an opening)
 * @param now - the clock's time
 * @example
 * ```ts
 * const due = now >= record.openUntil || aheadOfClock(record.openedAt, now);
 * ```
 */
export function aheadOfClock(at: number, now: number): boolean {
  return at - now > clockSkewMs;
}

/**
 * Lets a housekeeping timer (a sweep, a refresh) not keep the process
 * alive. Never use it for a timer a pending call waits on.
 *
 * @param handle - what `clock.setTimeout` returned
 */
export function unrefTimer(handle: unknown): void {
  (handle as { unref?: () => void } | null | undefined)?.unref?.();
}

/**
 * Waits `ms` on `clock`, rejecting with the signal's reason the moment
 * `signal` aborts.
 *
 * @param ms - how long to wait; 0 or less resolves on the next tick
 * @param options - the clock (default {@link systemClock}) and an abort signal
 * @throws the signal's reason when it aborts first
 * @example
 * ```ts
 * await sleep(1_000, { clock: ctx.clock, signal: ctx.signal });
 * ```
 */
export function sleep(ms: number, options: { clock?: Clock; signal?: AbortSignal } = {}): Promise<void> {
  const { clock = systemClock, signal } = options;
  if (signal?.aborted) return Promise.reject(signal.reason);
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clock.clearTimeout(handle);
      reject(signal?.reason);
    };
    const handle = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, Math.max(0, ms));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
