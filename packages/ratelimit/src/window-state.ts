import { aheadOfClock } from '@sluice/core/kit';
import { book, bookInPlace, emptyLog, liveTotal, type Log, prune, pruneInPlace, refund, refundInPlace, waitMs, type SlidingWindow } from './bucket.js';
import type { LimitKind } from './errors.js';

/**
 * A key's shared window state, as stored: plain JSON, the admissions still
 * inside each window (see bucket.ts) and a pause. Every function here is
 * pure, as `store.update` requires.
 */
export interface WindowState {
  /** The latest `clock.now()` the state was brought up to; bookings are made at this time. */
  at: number;
  requests: Log;
  tokens: Log;
  /** No admission before this `clock.now()` (0: not paused). */
  pausedUntil: number;
}

/** The limits a state is kept for. */
export interface Windows {
  requests: SlidingWindow | undefined;
  tokens: SlidingWindow | undefined;
  /** The longest pause this limiter sets; a stored pause longer than that is not one it could have set (default: no bound). */
  maxPauseMs?: number;
}

/** Whether a request is admitted now, or how long it must wait and for what. */
export type Decision = { admitted: true } | { admitted: false; waitMs: number; limit: LimitKind };

/**
 * Prunes both logs to `now`; a missing state is an empty, unpaused window
 * (`own`: `state` is the object this process last wrote or read for the
 * key, already checked, so only its shape is looked at)
 * (which is also what an expired one would have become).
 *
 * A state brought up to a time well after `now` (beyond the skew between
 * processes' clocks) was written before the clock stepped back: read as it
 * is, it would hold its bookings and its pause for as long as the step (an
 * hour's step back, an hour's refusals). It is read as empty instead, as an
 * expired one would be: the bookings of one window before the step are
 * forgotten, so at most one window's worth more goes through once. (Moving
 * its times back by the step would keep them, but a refusal writes nothing,
 * so each read would move them again from its own time and the window would
 * never drain.)
 */
export function bringUp(windows: Windows, state: WindowState | undefined, now: number, own = false): WindowState {
  // A state of another shape (an unreleased build's, say, in a shared store) is treated as empty, never misread.
  // One this process wrote itself (the very object it last saw) needs only the cheap check.
  if (state === undefined || !(own ? isOwnState(state) : isWindowState(state)) || aheadOfClock(state.at, now)) return { at: now, requests: emptyLog, tokens: emptyLog, pausedUntil: 0 };
  const { requests, tokens } = windows;
  // Another process's clock may run a little ahead: keep bookings in time order.
  const at = Math.max(state.at, now);
  return {
    at,
    requests: requests ? prune(requests, state.requests, at) : emptyLog,
    tokens: tokens ? prune(tokens, state.tokens, at) : emptyLog,
    // A pause further off than any this limiter sets (1e308 from a bad write) would refuse for good.
    pausedUntil: state.pausedUntil > at && state.pausedUntil - at <= (windows.maxPauseMs ?? Infinity) ? state.pausedUntil : 0,
  };
}

/**
 * Whether a stored value is a window state this version can trust: its
 * shape, and inside it what every state this code writes holds: finite
 * times, entries in time order no later than `at`, amounts of at least 0,
 * each log's total the sum of its entries. Anything else (another build's
 * record, a hand edit, a bad write to a shared store) is read as empty,
 * never misread: a total of 1e308 over a few entries, or an entry dated
 * 1e308, never leaves the window, and refused every call on the key for
 * good (a refusal writes nothing, so nothing ever replaced it).
 */
export function isWindowState(state: WindowState | undefined): state is WindowState {
  if (typeof state !== 'object' || state === null) return false;
  const { at, pausedUntil } = state;
  return Number.isFinite(at) && isLog(state.requests, at) && isLog(state.tokens, at) && (pausedUntil === undefined || Number.isFinite(pausedUntil));
}

/** Whether `log` is a log whose entries are as {@link isWindowState} says. */
function isLog(log: Log | undefined, at: number): boolean {
  if (typeof log !== 'object' || log === null) return false;
  const { flat, total } = log;
  if (!Array.isArray(flat) || flat.length % 2 !== 0 || typeof total !== 'number' || !(total >= 0)) return false;
  let sum = 0;
  let last = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < flat.length; i += 2) {
    const time = flat[i];
    const amount = flat[i + 1];
    if (typeof time !== 'number' || !(time >= last) || !(time <= at) || typeof amount !== 'number' || !(amount >= 0 && amount < Infinity)) return false;
    last = time;
    sum += amount;
  }
  // Sums of the same amounts in another order may differ in their last bits.
  return Math.abs(total - sum) <= 1e-9 * Math.max(1, sum);
}

/** The cheap check of a state this process brought up itself (the state last seen): its shape alone. */
function isOwnState(state: WindowState | undefined): state is WindowState {
  return state !== undefined && Number.isFinite(state.at) && Array.isArray(state.requests?.flat) && Array.isArray(state.tokens?.flat);
}

/** The one admitting decision, shared: deciding allocates nothing when the request goes. */
export const admitNow: Decision = Object.freeze({ admitted: true });

/** Whether one request reserving `cost` tokens goes at `state.at` (`state` brought up to it). */
export function decide(windows: Windows, state: WindowState, cost: number): Decision {
  const now = state.at;
  if (state.pausedUntil > now) return { admitted: false, waitMs: state.pausedUntil - now, limit: 'pause' };
  const { requests, tokens } = windows;
  const requestWait = requests ? waitMs(requests, state.requests, 1, now) : 0;
  const tokenWait = tokens && cost > 0 ? waitMs(tokens, state.tokens, cost, now) : 0;
  if (requestWait === 0 && tokenWait === 0) return admitNow;
  return tokenWait > requestWait
    ? { admitted: false, waitMs: tokenWait, limit: 'tokens' }
    : { admitted: false, waitMs: requestWait, limit: 'requests' };
}

/**
 * Whether {@link decide} would admit a request of `cost` at `now` from this
 * state, without allocating: a cheap check on every call, against the state
 * last seen, before going to the store.
 */
export function wouldAdmit(windows: Windows, state: WindowState | undefined, cost: number, now: number): boolean {
  if (!isOwnState(state) || aheadOfClock(state.at, now)) return true;
  const at = Math.max(state.at, now);
  if (state.pausedUntil > at) return false;
  const { requests, tokens } = windows;
  if (requests && liveTotal(requests, state.requests, at) + 1 > requests.limit) return false;
  return !(tokens && cost > 0 && liveTotal(tokens, state.tokens, at) + cost > tokens.limit);
}

/**
 * When a request of `cost` goes at `now` from `state`: that state, brought
 * up to `now` and with the request booked, changed in place (no copy of
 * its logs); `undefined` when it does not go, or the state is ahead of the
 * clock, for the caller's pure path ({@link bringUp}, {@link decide},
 * {@link admitted}). The same state those give, in the same object.
 *
 * Only for a state the store hands a reducer to change in place (written
 * last by a limiter's reducer, which shares none of its logs with any
 * other object); one of another shape is left to the pure path.
 */
export function admitInPlace(windows: Windows, state: WindowState, cost: number, now: number): WindowState | undefined {
  if (!isOwnState(state) || aheadOfClock(state.at, now) || !wouldAdmit(windows, state, cost, now)) return undefined;
  const { requests, tokens } = windows;
  const at = Math.max(state.at, now);
  const mutable = state as { -readonly [K in keyof WindowState]: WindowState[K] };
  mutable.at = at;
  // wouldAdmit found no pause at `at`: bringing the state up would clear it.
  mutable.pausedUntil = 0;
  mutable.requests = requests ? bookInPlace(requests, state.requests, 1, at) : emptyLog;
  mutable.tokens = !tokens ? emptyLog : cost > 0 ? bookInPlace(tokens, state.tokens, cost, at) : pruneInPlace(tokens, state.tokens, at);
  return state;
}

/** The state after admitting one request reserving `cost` tokens, booked at `state.at`. */
export function admitted(windows: Windows, state: WindowState, cost: number): WindowState {
  const { requests, tokens } = windows;
  return {
    ...state,
    requests: requests ? book(requests, state.requests, 1, state.at) : emptyLog,
    tokens: tokens && cost > 0 ? book(tokens, state.tokens, cost, state.at) : state.tokens,
  };
}

/** The state after un-admitting a request booked at `bookedAt` that was never sent: nothing of it stays recorded. */
export function givenBack(windows: Windows, state: WindowState, cost: number, bookedAt: number): WindowState {
  const { requests, tokens } = windows;
  return {
    ...state,
    requests: requests ? refund(requests, state.requests, 1, bookedAt, state.at) : emptyLog,
    tokens: tokens && cost > 0 ? refund(tokens, state.tokens, cost, bookedAt, state.at) : state.tokens,
  };
}

/**
 * The state after correcting a reservation booked at `bookedAt` by `delta`
 * tokens (usage minus reservation): an unused part is taken back from the
 * booking itself; usage above it has already happened and is booked now.
 */
export function corrected(windows: Windows, state: WindowState, delta: number, bookedAt: number): WindowState {
  const { tokens } = windows;
  if (!tokens || delta === 0) return state;
  return {
    ...state,
    tokens: delta < 0 ? refund(tokens, state.tokens, -delta, bookedAt, state.at) : book(tokens, state.tokens, delta, state.at),
  };
}

/**
 * {@link corrected} on `state` brought up to `now`, changed in place (no
 * copy of its logs); `undefined` when the state is ahead of the clock, for
 * the caller's pure path. As {@link admitInPlace}, only for a state the
 * store hands a reducer to change in place.
 */
export function correctInPlace(windows: Windows, state: WindowState, delta: number, bookedAt: number, now: number): WindowState | undefined {
  if (!isOwnState(state) || aheadOfClock(state.at, now)) return undefined;
  const { requests, tokens } = windows;
  const at = Math.max(state.at, now);
  const mutable = state as { -readonly [K in keyof WindowState]: WindowState[K] };
  // Brought up as bringUp would: both logs pruned to `at`, a pause that is over (or out of bounds) cleared.
  mutable.pausedUntil = state.pausedUntil > at && state.pausedUntil - at <= (windows.maxPauseMs ?? Infinity) ? state.pausedUntil : 0;
  mutable.at = at;
  mutable.requests = requests ? pruneInPlace(requests, state.requests, at) : emptyLog;
  if (!tokens) {
    mutable.tokens = emptyLog;
  } else if (delta === 0) {
    mutable.tokens = pruneInPlace(tokens, state.tokens, at);
  } else {
    mutable.tokens = delta < 0 ? refundInPlace(tokens, state.tokens, -delta, bookedAt, at) : bookInPlace(tokens, state.tokens, delta, at);
  }
  return state;
}

/**
 * How long a record must outlive a write that left it as `state`: until
 * its last entry has left the window and its pause is over. An idle key's
 * record then expires instead of being kept as an empty window.
 */
export function keepMs(windows: Windows, state: WindowState): number {
  const windowMs = Math.max(windows.requests?.windowMs ?? 0, windows.tokens?.windowMs ?? 0);
  return Math.max(windowMs, state.pausedUntil - state.at, 1);
}

/** The state paused until `untilMs`; the same object when it already was, as long or longer. */
export function paused(state: WindowState, untilMs: number): WindowState {
  return untilMs > state.pausedUntil ? { ...state, pausedUntil: untilMs } : state;
}

/** What waits ahead of a newcomer on this key: requests, and the tokens they reserve. */
export interface Ahead {
  requests: number;
  tokens: number;
}

/**
 * A lower bound of how long a newcomer reserving `cost` tokens waits, and
 * for what, if everything `ahead` of it were admitted back to back from
 * `state` (brought up to `now`); `undefined` when the windows would let it
 * go at once.
 */
export function estimate(windows: Windows, state: WindowState, ahead: Ahead, cost: number, now: number): Exclude<Decision, { admitted: true }> | undefined {
  let refusal: Exclude<Decision, { admitted: true }> | undefined =
    state.pausedUntil > now ? { admitted: false, waitMs: state.pausedUntil - now, limit: 'pause' } : undefined;
  const { requests, tokens } = windows;
  const requestWait = requests ? waitMs(requests, state.requests, ahead.requests + 1, now) : 0;
  if (requestWait > (refusal?.waitMs ?? 0)) refusal = { admitted: false, waitMs: requestWait, limit: 'requests' };
  const tokenWait = tokens && cost > 0 ? waitMs(tokens, state.tokens, ahead.tokens + cost, now) : 0;
  if (tokenWait > (refusal?.waitMs ?? 0)) refusal = { admitted: false, waitMs: tokenWait, limit: 'tokens' };
  return refusal;
}
