import { admits, type Bucket, correct, decay, take, waitMs } from './bucket.js';
import type { LimitKind } from './rate-limited-error.js';

/**
 * A key's shared window state, as stored: plain JSON, four numbers whatever
 * the limits and the traffic. Debts are in the buckets' integer units (see
 * bucket.ts). Every function here is pure, as `store.update` requires.
 */
export interface WindowState {
  /** `clock.now()` the debts were last brought up to. */
  at: number;
  requests: number;
  tokens: number;
  /** No admission before this `clock.now()` (0: not paused). */
  pausedUntil: number;
}

/** The limits a state is kept for. */
export interface Buckets {
  requests: Bucket | undefined;
  tokens: Bucket | undefined;
}

/** Whether a request is admitted now, or how long it must wait and for what. */
export type Decision = { admitted: true } | { admitted: false; waitMs: number; limit: LimitKind };

/**
 * Decays both debts from `state.at` to `now`; a missing state is a full,
 * unpaused bucket (which is also what an expired one would have become).
 */
export function bringUp(buckets: Buckets, state: WindowState | undefined, now: number): WindowState {
  if (!state) return { at: now, requests: 0, tokens: 0, pausedUntil: 0 };
  const { requests, tokens } = buckets;
  // Another process's clock may run a little ahead: never count time twice.
  const at = Math.max(state.at, now);
  return {
    at,
    requests: requests ? decay(requests, state.requests, state.at, at) : 0,
    tokens: tokens ? decay(tokens, state.tokens, state.at, at) : 0,
    pausedUntil: state.pausedUntil > at ? state.pausedUntil : 0,
  };
}

/** The one admitting decision, shared: deciding allocates nothing when the request goes. */
export const admitNow: Decision = Object.freeze({ admitted: true });

/** Whether one request reserving `cost` tokens goes now (`state` brought up to `now`). */
export function decide(buckets: Buckets, state: WindowState, cost: number, now: number): Decision {
  if (state.pausedUntil > now) return { admitted: false, waitMs: state.pausedUntil - now, limit: 'pause' };
  const { requests, tokens } = buckets;
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
export function wouldAdmit(buckets: Buckets, state: WindowState | undefined, cost: number, now: number): boolean {
  if (!state) return true;
  const at = Math.max(state.at, now);
  if (state.pausedUntil > at) return false;
  const { requests, tokens } = buckets;
  if (requests && !admits(requests, decay(requests, state.requests, state.at, at), 1)) return false;
  return !(tokens && cost > 0 && !admits(tokens, decay(tokens, state.tokens, state.at, at), cost));
}

/** The state after admitting one request reserving `cost` tokens. */
export function admitted(buckets: Buckets, state: WindowState, cost: number): WindowState {
  const { requests, tokens } = buckets;
  return {
    ...state,
    requests: requests ? take(requests, state.requests, 1) : 0,
    tokens: tokens && cost > 0 ? take(tokens, state.tokens, cost) : state.tokens,
  };
}

/** The state after un-admitting a request that was never sent. */
export function givenBack(buckets: Buckets, state: WindowState, cost: number): WindowState {
  const { requests, tokens } = buckets;
  return {
    ...state,
    requests: requests ? correct(requests, state.requests, -1) : 0,
    tokens: tokens && cost > 0 ? correct(tokens, state.tokens, -cost) : state.tokens,
  };
}

/** The state after correcting a reservation by `delta` tokens (usage minus reservation). */
export function corrected(buckets: Buckets, state: WindowState, delta: number): WindowState {
  return buckets.tokens ? { ...state, tokens: correct(buckets.tokens, state.tokens, delta) } : state;
}
