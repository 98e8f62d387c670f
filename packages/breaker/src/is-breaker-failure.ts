import type { SluiceError } from '@sluice/core';

/** Codes that say the upstream itself is unwell. */
const upstreamFaults = new Set(['SERVER_ERROR', 'CONNECTION', 'STREAM_CUT', 'MALFORMED_RESPONSE']);

/**
 * The default rule for what counts against a circuit: a 5xx
 * (`SERVER_ERROR`), a connection refused or reset (`CONNECTION`), a
 * stream cut mid-way (`STREAM_CUT`), an answer that is not the API's
 * (`MALFORMED_RESPONSE`), and a timeout (`TIMEOUT`) other than the
 * caller's own deadline (phase `deadline`: the caller's budget ran out,
 * which says nothing about the upstream). Everything else, among them
 * every 4xx, a 429 (the rate limiter's business), a caller abort and an
 * open circuit further in, counts neither for nor against it.
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
  if (error.code === 'TIMEOUT') return (error as SluiceError & { phase?: unknown }).phase !== 'deadline';
  return upstreamFaults.has(error.code);
}
