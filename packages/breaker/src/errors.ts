import { SluiceError } from '@sluice/core';
import type { CircuitStateName } from './events.js';

/**
 * The call failed fast because its circuit is open, isolated, or half-open
 * with every probe slot taken. Nothing was sent upstream. Code
 * `CIRCUIT_OPEN`, not retryable: retrying at once would only fail fast again.
 *
 * @example
 * ```ts
 * try { await llm.complete(request); }
 * catch (error) {
 *   if (error instanceof CircuitOpenError) queue.later(request, error.retryAfterMs ?? 60_000);
 * }
 * ```
 */
export class CircuitOpenError extends SluiceError {
  static override readonly brand = 'CircuitOpenError';
  /**
   * @param key - the circuit's key (`${origin}|${model}` by default)
   * @param state - the circuit's state: `open`, `half-open` or `isolated`
   * @param retryAfterMs - milliseconds until the circuit turns half-open: 0 when it is
   *   half-open already, `undefined` when isolated (held until reset)
   */
  constructor(
    readonly key: string,
    readonly state: Exclude<CircuitStateName, 'closed'>,
    retryAfterMs: number | undefined,
  ) {
    super('CIRCUIT_OPEN', describe(key, state, retryAfterMs), { retryable: false, retryAfterMs, httpStatus: 503 });
  }
}

function describe(key: string, state: CircuitStateName, retryAfterMs: number | undefined): string {
  if (state === 'isolated') return `circuit ${key} is isolated until reset`;
  if (state === 'half-open') return `circuit ${key} is half-open and its probes are in flight`;
  return `circuit ${key} is open; it turns half-open in ${retryAfterMs} ms`;
}
