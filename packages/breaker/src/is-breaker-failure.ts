import type { SluiceError } from '@sluice/core';

/**
 * The default rule for what counts against a circuit: the error's own
 * `upstreamFault` flag, which core sets for what says the upstream itself
 * is unwell: a 5xx (`SERVER_ERROR`), a connection refused or reset
 * (`CONNECTION`), a stream cut mid-way (`STREAM_CUT`), an answer that is
 * not the API's (`MALFORMED_RESPONSE`) and a connect, first-byte, idle or
 * attempt timeout (`TIMEOUT`). Everything else counts neither way: every
 * 4xx, a 429 (the rate limiter's business), a caller abort, the caller's
 * own deadline (`DEADLINE_EXCEEDED`), an open circuit further in. An error
 * of your own counts when it is constructed with `upstreamFault: true`.
 *
 * @param error - the error an attempt failed with
 * @returns whether it counts as a failure
 * @example
 * ```ts
 * // Count 429s too, on top of the default rule:
 * breaker({ isFailure: (error) => error.code === 'RATE_LIMITED' || isBreakerFailure(error) });
 * ```
 */
export function isBreakerFailure(error: SluiceError): boolean {
  return error.upstreamFault;
}
