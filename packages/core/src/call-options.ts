import type { CompletionContext } from './context.js';

/** Per-call options of `complete`, `stream`, `run` and `batch`. */
export interface CallOptions {
  signal?: AbortSignal;
  /** One deadline for the whole call: every attempt, wait and middleware. */
  timeoutMs?: number;
  /** Labels (user, tenant, feature) that keyed middleware and reports use. */
  tags?: Record<string, string>;
  /**
   * The call this one is made for (a router's hop, say): aborting it (its
   * caller, its deadline, `close()`) aborts this one with the same reason,
   * and this one's deadline is no later than its. Cheaper than passing
   * `signal` and `timeoutMs` along: no AbortSignal, no second timer.
   */
  parent?: CompletionContext;
}
