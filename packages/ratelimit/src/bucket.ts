/*
 * The arithmetic of one exact sliding window: a log of what was admitted,
 * as entries (a time and an amount) in time order, each kept until it
 * leaves the window. Plain JSON; every function here is pure and allocates
 * only the log it returns, except those named `…InPlace`, which change the
 * log they are given (one their caller owns) and allocate nothing once it
 * has room.
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
 *
 * Flat. The entries are one array of numbers, `[at, amount, at, amount,
 * …]`, not an array of pairs: a decision copies and scans one contiguous
 * block instead of 32 small arrays spread over the heap, which cost four
 * times as much once a process keeps thousands of keys (each decision then
 * misses the cache on every pair) and gave the garbage collector 33 objects
 * a key to trace instead of one.
 */

/** What a window holds: its entries, oldest first, and their sum. */
export interface Log {
  readonly total: number;
  /** The entries, flat: `[at, amount, at, amount, …]`, `at` in `clock.now()` milliseconds, oldest first. */
  readonly flat: readonly number[];
}

/** How one limit is declared: at most `limit` in any `windowMs`. */
export interface SlidingWindow {
  readonly limit: number;
  readonly windowMs: number;
}

/** The log of a window nothing was admitted in. */
export const emptyLog: Log = Object.freeze({ total: 0, flat: Object.freeze([]) as readonly number[] });

/** Most entries a log keeps before it merges the two closest, whatever the limit; see the top of this file. */
export const maxEntries = 32;

/** Index in `flat` of the first entry still counting at `now`. */
function firstLive(window: SlidingWindow, log: Log, now: number): number {
  const { flat } = log;
  const edge = now - window.windowMs;
  let i = 0;
  while (i < flat.length && (flat[i] as number) <= edge) i += 2;
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
  const { flat } = log;
  const edge = now - window.windowMs;
  let total = log.total;
  for (let i = 0; i < flat.length && (flat[i] as number) <= edge; i += 2) total -= flat[i + 1] as number;
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
  if (first >= log.flat.length) return emptyLog;
  return { total: liveTotal(window, log, now), flat: log.flat.slice(first) };
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
  const { flat } = log;
  const edge = now - windowMs;
  let excess = liveTotal(window, log, now) + amount - limit;
  if (excess <= 0) return 0;
  for (let i = 0; i < flat.length; i += 2) {
    const at = flat[i] as number;
    if (at <= edge) continue;
    excess -= flat[i + 1] as number;
    if (excess <= 0) return at + windowMs - now;
  }
  // Unreachable when the total is consistent: everything gone makes room for any amount ≤ limit.
  return windowMs;
}

/**
 * The log after booking `amount` at `at` (pruned to `at` first, `at` no
 * earlier than the last entry). Same-millisecond bookings share an entry.
 * Prunes, books and merges in one copy.
 *
 * @param window - the limit
 * @param log - the log as stored
 * @param amount - what was admitted, more than 0
 * @param at - when, in `clock.now()` milliseconds
 */
export function book(window: SlidingWindow, log: Log, amount: number, at: number): Log {
  const { flat } = log;
  const first = firstLive(window, log, at);
  const total = (first === 0 ? log.total : liveTotal(window, log, at)) + amount;
  const kept = flat.length - first;
  // Same millisecond as the last entry (or later than this clock: another process's ran ahead).
  if (kept > 0 && (flat[flat.length - 2] as number) >= at) {
    const next = copy(flat, first, flat.length, kept);
    next[kept - 1] = (next[kept - 1] as number) + amount;
    return { total, flat: next };
  }
  if (kept < maxEntries * 2) {
    const next = copy(flat, first, flat.length, kept + 2);
    next[kept] = at;
    next[kept + 1] = amount;
    return { total, flat: next };
  }
  // Full: of the entries and the new one, the two neighbours closest in
  // time (the earliest such pair) become one, at the later one's time.
  const end = flat.length;
  const best = closestPair(flat, first, at);
  const next = copy(flat, first, best, kept);
  let j = best - first;
  if (best + 2 === end) {
    // The last entry merges into the new one.
    next[j++] = at;
    next[j] = (flat[best + 1] as number) + amount;
    return { total, flat: next };
  }
  next[j++] = flat[best + 2] as number;
  next[j++] = (flat[best + 1] as number) + (flat[best + 3] as number);
  for (let i = best + 4; i < end; i++) next[j++] = flat[i] as number;
  next[j++] = at;
  next[j] = amount;
  return { total, flat: next };
}

/** A log as this module changes it in place: never {@link emptyLog}, which is frozen and shared. */
interface MutableLog {
  total: number;
  flat: number[];
}

/**
 * {@link prune}, changing `log` itself (one this module made) rather than
 * copying it: the same log, or {@link emptyLog} when nothing is left.
 *
 * @param window - the limit
 * @param log - the log as stored, owned by the caller
 * @param now - the time to prune at
 */
export function pruneInPlace(window: SlidingWindow, log: Log, now: number): Log {
  const first = firstLive(window, log, now);
  if (first === 0) return log;
  if (first >= log.flat.length) return emptyLog;
  const mutable = log as MutableLog;
  mutable.total = liveTotal(window, log, now);
  mutable.flat.splice(0, first);
  return log;
}

/**
 * {@link book}, changing `log` itself (one this module made) rather than
 * copying it, and returning it: the same entries, the same merging, no
 * new array once the log has room. {@link emptyLog} is never changed: a
 * booking on it makes a new log.
 *
 * @param window - the limit
 * @param log - the log as stored, owned by the caller
 * @param amount - what was admitted, more than 0
 * @param at - when, in `clock.now()` milliseconds
 */
export function bookInPlace(window: SlidingWindow, log: Log, amount: number, at: number): Log {
  if (log === emptyLog) return book(window, log, amount, at);
  const pruned = pruneInPlace(window, log, at);
  if (pruned === emptyLog) return book(window, emptyLog, amount, at);
  const mutable = log as MutableLog;
  const { flat } = mutable;
  mutable.total += amount;
  const kept = flat.length;
  // Same millisecond as the last entry (or later than this clock: another process's ran ahead).
  if (kept > 0 && (flat[kept - 2] as number) >= at) {
    flat[kept - 1] = (flat[kept - 1] as number) + amount;
    return log;
  }
  if (kept < maxEntries * 2) {
    flat.push(at, amount);
    return log;
  }
  // Full: as in book, the earliest pair of closest neighbours becomes one, at the later one's time.
  const best = closestPair(flat, 0, at);
  if (best + 2 === kept) {
    // The last entry merges into the new one.
    flat[best] = at;
    flat[best + 1] = (flat[best + 1] as number) + amount;
    return log;
  }
  flat[best] = flat[best + 2] as number;
  flat[best + 1] = (flat[best + 1] as number) + (flat[best + 3] as number);
  // A loop, not `copyWithin`: on a plain array that builtin takes its
  // generic path, element by element, and cost more than the rest of a call.
  for (let i = best + 2; i < kept - 2; i++) flat[i] = flat[i + 2] as number;
  flat[kept - 2] = at;
  flat[kept - 1] = amount;
  return log;
}

/**
 * Index in `flat` of the entry holding a booking made at `bookedAt`:
 * merging only moves content later, so it is the first entry at or after
 * that time (`flat.length` when there is none).
 */
function bookingIndex(flat: readonly number[], bookedAt: number): number {
  let lo = 0;
  let hi = flat.length >> 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((flat[mid * 2] as number) < bookedAt) lo = mid + 1;
    else hi = mid;
  }
  return lo * 2;
}

/**
 * {@link refund}, changing `log` itself (one this module made) rather than
 * copying it: the same log, or {@link emptyLog} when nothing is left.
 *
 * @param window - the limit
 * @param log - the log as stored, owned by the caller
 * @param amount - what to take back, more than 0
 * @param bookedAt - when the booking was made
 * @param now - the time of the refund
 */
export function refundInPlace(window: SlidingWindow, log: Log, amount: number, bookedAt: number, now: number): Log {
  const pruned = log === emptyLog ? log : pruneInPlace(window, log, now);
  if (pruned === emptyLog || bookedAt <= now - window.windowMs) return pruned;
  const mutable = pruned as MutableLog;
  const { flat } = mutable;
  const index = bookingIndex(flat, bookedAt);
  if (index >= flat.length) return pruned;
  const booked = flat[index + 1] as number;
  const taken = Math.min(amount, booked);
  if (taken === booked) {
    if (flat.length === 2) return emptyLog;
    flat.splice(index, 2);
  } else {
    flat[index + 1] = booked - taken;
  }
  mutable.total -= taken;
  return pruned;
}

/** A copy of `log` that may be changed in place ({@link emptyLog} stays itself). */
export function ownCopy(log: Log): Log {
  return log === emptyLog ? log : { total: log.total, flat: log.flat.slice() };
}

/**
 * Index in `flat` of the earlier of the two neighbours closest in time
 * (the earliest such pair), among the entries from `first` on and a new
 * one at `at` after them: the pair a full log merges.
 */
function closestPair(flat: readonly number[], first: number, at: number): number {
  const end = flat.length;
  let best = first;
  let gap = Infinity;
  for (let i = first; i < end; i += 2) {
    const between = (i + 2 < end ? (flat[i + 2] as number) : at) - (flat[i] as number);
    if (between < gap) {
      gap = between;
      best = i;
    }
  }
  return best;
}

/** A new array of `length` numbers starting with `flat[from..to)`. */
function copy(flat: readonly number[], from: number, to: number, length: number): number[] {
  const next = new Array<number>(length);
  for (let i = from, j = 0; i < to; i++, j++) next[j] = flat[i] as number;
  return next;
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
  // One copy, then the same steps as in place: the two cannot disagree on what a refund takes.
  return refundInPlace(window, ownCopy(log), amount, bookedAt, now);
}
