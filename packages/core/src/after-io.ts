import { systemClock } from './clock.js';

/**
 * Runs `callback` after the I/O that is due now: in setImmediate's check
 * phase where the runtime has one (Node, Bun, Deno), else on a zero timer.
 * Either keeps the process alive until it ran.
 *
 * @param callback - run once
 * @example
 * ```ts
 * afterIo(() => flush());
 * ```
 */
export const afterIo: (callback: () => void) => void =
  typeof globalThis.setImmediate === 'function'
    ? (callback) => void globalThis.setImmediate(callback)
    : (callback) => void systemClock.setTimeout(callback, 0);
