import { UnknownModelError } from './errors.js';
import type { PriceMatch, PriceTable } from './price-table.js';

/**
 * What to do with a model the price table does not know: `'error'` throws
 * {@link UnknownModelError} (the default), `'warn'` lets the call through at
 * $0 with a `price-unknown` event, `'free'` lets it through at $0 silently
 * (a local model, say). Never a silent zero unless you chose `'free'`.
 */
export type UnknownModelPolicy = 'error' | 'warn' | 'free';

/**
 * The model's price, or undefined when it has none and the policy allows
 * that; internal.
 *
 * @param table - the price table
 * @param model - the model name as sent
 * @param policy - what an unknown model means
 * @throws UnknownModelError when the model is unknown and the policy is `'error'`
 * @example
 * ```ts
 * const match = resolvePrice(prices, ctx.request.model, 'error');
 * ```
 */
export function resolvePrice(table: PriceTable, model: string, policy: UnknownModelPolicy): PriceMatch | undefined {
  const match = table.lookup(model);
  if (match || policy !== 'error') return match;
  throw new UnknownModelError(model);
}
