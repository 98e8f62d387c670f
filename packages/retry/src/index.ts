/**
 * @module @sluice/retry
 *
 * `retry()` for sluice pipelines: exponential backoff with jitter, the
 * server's `Retry-After`, one deadline across attempts, abort, and a
 * retry budget so an outage does not multiply the load on a failing
 * provider. Backoff strategies and the budget are exported on their own.
 */
export { retry, type RetryOptions } from './retry.js';
export { RetryError, type RetryAttempt } from './retry-error.js';
export {
  exponentialBackoff,
  constantBackoff,
  type Backoff,
  type Jitter,
  type ExponentialBackoffOptions,
} from './backoff.js';
export { retryBudget, type RetryBudget, type RetryBudgetOptions } from './retry-budget.js';
export type { RetryState, RetryEvents } from './types.js';
