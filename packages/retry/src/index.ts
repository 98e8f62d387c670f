/**
 * @module @sluice/retry
 *
 * `retry()` for sluice pipelines: exponential backoff with jitter, the
 * server's `Retry-After`, one deadline across attempts, abort, and a
 * retry budget so an outage does not multiply the load on a failing
 * provider. Backoff strategies and the budget are exported on their own.
 */
import type { RetryEvents } from './events.js';
import type { RetryState } from './retry.js';

export { retry, type RetryState } from './retry.js';
export type { RetryOptions } from './options.js';
export type { RetryEvents } from './events.js';
export { RetryError, type RetryAttempt } from './errors.js';
export {
  exponentialBackoff,
  constantBackoff,
  type Backoff,
  type Jitter,
  type ExponentialBackoffOptions,
} from './backoff.js';
export { retryBudget, type RetryBudget, type RetryBudgetOptions } from './retry-budget.js';

declare module '@sluice/core' {
  interface SluiceEvents {
    retry: RetryEvents['retry'];
    'retry-stop': RetryEvents['retry-stop'];
  }
  interface SluiceState {
    retry?: RetryState;
  }
}
