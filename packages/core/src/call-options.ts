/** Per-call options of `complete`, `stream`, `run` and `batch`. */
export interface CallOptions {
  signal?: AbortSignal;
  /** One deadline for the whole call: every attempt, wait and middleware. */
  timeoutMs?: number;
  /** Labels (user, tenant, feature) that keyed middleware and reports use. */
  tags?: Record<string, string>;
}
