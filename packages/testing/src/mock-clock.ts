/**
 * The timer functions {@link mockUpstream} schedules every delay with.
 *
 * It is structurally a subset of `@sluice/core`'s `Clock`, so the clock a
 * pipeline runs on can be passed straight in.
 *
 * @example
 * ```ts
 * const clock: MockClock = {
 *   setTimeout: (callback, ms) => setTimeout(callback, ms),
 *   clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
 * };
 * const upstream = await mockUpstream({ clock, latencyMs: 1_000 });
 * ```
 */
export interface MockClock {
  /** Schedules `callback` after `ms` milliseconds and returns a handle for {@link MockClock.clearTimeout}. */
  setTimeout(callback: () => void, ms: number): unknown;
  /** Cancels a timer scheduled by {@link MockClock.setTimeout}. */
  clearTimeout(handle: unknown): void;
  /** Milliseconds since the epoch, used for `RecordedRequest.at` and `created`; `Date.now()` when absent. */
  now?(): number;
}

/**
 * The default clock. It looks the globals up at every call rather than at
 * import, so `vi.useFakeTimers()` installed later still drives the delays.
 *
 * @example
 * ```ts
 * const clock = options.clock ?? globalClock;
 * ```
 */
export const globalClock: MockClock = {
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};
