/**
 * @module @sluice/ratelimit
 *
 * `rateLimit()`: exact sliding windows of requests and tokens,
 * concurrency caps, wait-or-reject with a FIFO queue, keyed per model or
 * tag, and a cooperative pause when the upstream answers 429.
 */
export { rateLimit } from './rate-limit.js';
export type { RateLimitOptions, WindowLimit } from './options.js';
export { LimitRejectedError, type LimitKind } from './errors.js';
import type { LimitPauseEvent, LimitRejectEvent, LimitWaitEvent, RateLimitState } from './events.js';

export type { LimitWaitEvent, LimitRejectEvent, LimitPauseEvent, RateLimitState } from './events.js';
export { parseDuration, headerPauseMs } from './pace-from-headers.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    'limit-wait': LimitWaitEvent;
    'limit-reject': LimitRejectEvent;
    'limit-pause': LimitPauseEvent;
  }
  interface SluiceState {
    ratelimit?: RateLimitState;
  }
}
