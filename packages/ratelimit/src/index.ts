/**
 * @module @sluice/ratelimit
 *
 * `rateLimit()`: exact sliding windows of requests and tokens,
 * concurrency caps, wait-or-reject with a FIFO queue, keyed per model or
 * tag, and a cooperative pause when the upstream answers 429.
 */
export { rateLimit } from './rate-limit.js';
export type { RateLimitOptions, RateLimitKey, WindowLimit } from './rate-limit-options.js';
export { RateLimitedError, type LimitKind } from './rate-limited-error.js';
export type { LimitWaitEvent, LimitRejectEvent, LimitPauseEvent, RateLimitState } from './types.js';
export { parseDuration, headerPauseMs } from './pace-from-headers.js';
