import type { LimitKind } from './errors.js';

/** Payload of `limit-wait`: a request starts waiting for the limiter. */
export interface LimitWaitEvent {
  /** The call's id. */
  id: string;
  key: string;
  /** What it waits for. */
  limit: LimitKind;
  /** The estimated wait (0 when only a concurrency slot is awaited and no end is known). */
  waitMs: number;
  /** Requests waiting on this key, this one included (not those being admitted at the same moment). */
  queued: number;
}

/** Payload of `limit-reject`: the limiter refused a request with a `LimitRejectedError`. */
export interface LimitRejectEvent {
  id: string;
  key: string;
  limit: LimitKind;
  retryAfterMs: number | undefined;
}

/** Payload of `limit-pause`: a key stops admitting anything until `untilMs`. */
export interface LimitPauseEvent {
  /** The id of the call whose answer caused the pause. */
  id: string;
  key: string;
  /** When admissions resume, in `clock.now()` time. */
  untilMs: number;
  /** How long from now. */
  pauseMs: number;
  /** A 429's `retry-after`, or the provider's `x-ratelimit-*` headers. */
  reason: 'retry-after' | 'headers';
}

/** What the limiter did to this call, under `ctx.state.ratelimit`. */
export interface RateLimitState {
  key: string;
  /** Milliseconds spent waiting for the limiter, summed over the call's attempts. */
  waitedMs: number;
  /** Tokens reserved for the latest attempt (0 without a token limit). */
  reservedTokens: number;
  /**
   * When the window booked the latest attempt, on the pipeline's clock (with
   * `@sluice/redis`, the fleet's); `undefined` when it went unrecorded (the
   * store failed and the policy let it go). No window of these times holds
   * more than the limit.
   */
  admittedAt?: number | undefined;
}
