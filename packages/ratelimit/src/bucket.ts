/*
 * The arithmetic of one exact sliding window: a log of what was admitted,
 * as `[at, amount]` entries in time order, each kept until it leaves the
 * window. Plain JSON; every function here is pure and allocates only the
 * log it returns.
 *
 * Rule. A window of `windowMs` (W) holds at most `limit` (L). An entry
 * booked at T counts at time u while T > u − W, and is pruned once
 * T ≤ u − W. An amount c is admitted at u only if live(u) + c ≤ L, where
 * live(u) is the sum of the entries that count at u; it is then booked at
 * u (or at the last entry's time, if another process's clock ran ahead).
 *
 * Bound. Take any window [s, s + W) and the last admission u in it. Every
 * earlier admission in the window, at t with s ≤ t ≤ u, has t ≥ s > u − W,
 * and its entry sits at some T with t ≤ T ≤ u (an entry only ever moves
 * later: see merging below). So each of them counted in live(u), with at
 * least its amount, when u was decided, and the window holds at most
 * live(u) + c ≤ L. Refunds only lower an entry by part of its own booking,
 * so what was counted then is at least what remains booked: the net
 * bookings of every window stay within L too. Only usage above a
 * reservation, which has already happened, is booked late (at settlement)
 * and can pass the bound; see the README.
 *
 * Exactness. Entries keep the admissions' own times, so the first amount
 * goes at once, a quiet window admits the whole limit, the sustained rate
 * is L per W, and a refused amount waits exactly until enough old entries
 * have left (`waitMs`). Entries of the same millisecond share one entry.
 *
 * Compact. A log keeps at most `maxEntries` (32) entries, whatever the
 * limit: past that, the two entries closest in time are merged into the
 * later one, whose content then leaves the window a little later than it
 * would have. That errs only on the safe side (the bound's argument holds
 * for any T ≥ t), and `waitMs` reads the merged log, so a wait is exact for
 * what the log holds and conservative for what really happened: at most
 * about W / 32 too long (2 s for a minute), and a sustained rate a few
 * percent under L when admissions are spread over more than 32 distinct
 * times a window. A state is then a few dozen numbers, which matters once
 * it is not in this process: a shared store sends and parses the whole log
 * on every decision (1 000 entries were 20 kB of JSON a decision).
 */

/** One booking: `[at, amount]`, `at` in `clock.now()` milliseconds. */
export type Entry = readonly [at: number, amount: number];

/** What a window holds: its entries, oldest first, and their sum. */
export interface Log {
  readonly total: number;
  readonly entries: readonly Entry[];
}

/** How one limit is declared: at most `limit` in any `windowMs`. */
export interface SlidingWindow {
  readonly limit: number;
  readonly windowMs: number;
}

/** The log of a window nothing was admitted in. */
export const emptyLog: Log = Object.freeze({ total: 0, entries: Object.freeze([]) as readonly Entry[] });

/** Most entries a log keeps before it merges the two closest, whatever the limit; see the top of this file. */
export const maxEntries = 32;

/** Index of the first entry still counting at `now`. */
function firstLive(window: SlidingWindow, log: Log, now: number): number {
  const { entries } = log;
  const edge = now - window.windowMs;
  let i = 0;
  while (i < entries.length && (entries[i] as Entry)[0] <= edge) i++;
  return i;
}

/**
 * What counts at `now`, without allocating: the total of the entries not yet
 * out of the window.
 *
 * @param window - the limit
 * @param log - the log as stored
 * @param now - the time to look at
 */
export function liveTotal(window: SlidingWindow, log: Log, now: number): number {
  const { entries } = log;
  const edge = now - window.windowMs;
  let total = log.total;
  for (let i = 0; i < entries.length && (entries[i] as Entry)[0] <= edge; i++) total -= (entries[i] as Entry)[1];
  return total;
}

/**
 * The log without the entries that left the window by `now`; the same
 * object when none did.
 *
 * @param window - the limit
 * @param log - the log as stored
 * @param now - the time to prune at
 */
export function prune(window: SlidingWindow, log: Log, now: number): Log {
  const first = firstLive(window, log, now);
  if (first === 0) return log;
  if (first === log.entries.length) return emptyLog;
  return { total: liveTotal(window, log, now), entries: log.entries.slice(first) };
}

/**
 * Milliseconds from `now` until `amount` fits (0 when it fits now): until
 * the oldest entries holding the excess have left the window. A lower
 * bound, `windowMs` per limit's worth beyond the first, when `amount` itself
 * is more than a window holds (a queue ahead counted in).
 *
 * @param window - the limit
 * @param log - the log, pruned or not
 * @param amount - what must fit
 * @param now - the time the wait counts from
 */
export function waitMs(window: SlidingWindow, log: Log, amount: number, now: number): number {
  const { limit, windowMs } = window;
  if (amount > limit) return Math.floor((amount - 1) / limit) * windowMs;
  const { entries } = log;
  const edge = now - windowMs;
  let excess = liveTotal(window, log, now) + amount - limit;
  if (excess <= 0) return 0;
  for (const [at, booked] of entries) {
    if (at <= edge) continue;
    excess -= booked;
    if (excess <= 0) return at + windowMs - now;
  }
  // Unreachable when the total is consistent: everything gone makes room for any amount ≤ limit.
  return windowMs;
}

/**
 * The log after booking `amount` at `at` (pruned to `at` first, `at` no
 * earlier than the last entry). Same-millisecond bookings share an entry.
 *
 * @param window - the limit
 * @param log - the log as stored
 * @param amount - what was admitted, more than 0
 * @param at - when, in `clock.now()` milliseconds
 */
export function book(window: SlidingWindow, log: Log, amount: number, at: number): Log {
  const pruned = prune(window, log, at);
  const { entries } = pruned;
  const last = entries[entries.length - 1];
  if (last && last[0] >= at) {
    const next = entries.slice();
    next[next.length - 1] = [last[0], last[1] + amount];
    return { total: pruned.total + amount, entries: next };
  }
  const next = entries.slice();
  next.push([at, amount]);
  if (next.length > maxEntries) mergeClosest(next);
  return { total: pruned.total + amount, entries: next };
}

/** Merges, in place, the two neighbouring entries closest in time into the later one (the earliest such pair). */
function mergeClosest(entries: Entry[]): void {
  let best = 0;
  let gap = Infinity;
  for (let i = 0; i + 1 < entries.length; i++) {
    const between = (entries[i + 1] as Entry)[0] - (entries[i] as Entry)[0];
    if (between < gap) {
      gap = between;
      best = i;
    }
  }
  const [, earlier] = entries[best] as Entry;
  const [at, later] = entries[best + 1] as Entry;
  entries.splice(best, 2, [at, earlier + later]);
}

/**
 * The log after taking back up to `amount` from the booking made at
 * `bookedAt`: a refund of an unused reservation, or the whole of an
 * admission that was never sent. A booking that has left the window by
 * `now` has nothing left to give back.
 *
 * @param window - the limit
 * @param log - the log as stored
 * @param amount - what to take back, more than 0
 * @param bookedAt - when the booking was made (the state's `at` it was admitted with)
 * @param now - the time of the refund
 */
export function refund(window: SlidingWindow, log: Log, amount: number, bookedAt: number, now: number): Log {
  const pruned = prune(window, log, now);
  if (bookedAt <= now - window.windowMs) return pruned;
  const { entries } = pruned;
  // Merging only moves content later, so the booking is in the first entry at or after its time.
  let lo = 0;
  let hi = entries.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((entries[mid] as Entry)[0] < bookedAt) lo = mid + 1;
    else hi = mid;
  }
  const entry = entries[lo];
  if (!entry) return pruned;
  const taken = Math.min(amount, entry[1]);
  const next = entries.slice();
  if (taken === entry[1]) next.splice(lo, 1);
  else next[lo] = [entry[0], entry[1] - taken];
  return next.length === 0 ? emptyLog : { total: pruned.total - taken, entries: next };
}
