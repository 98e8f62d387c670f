import { type CompletionContext, type Middleware, type Settlement } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { z } from 'zod';
import { AnomalyDetector, type AnomalyOptions, anomalyOptionsSchema } from './anomaly-detector.js';
import './cost-events.js';
import { priceTableOption, unknownModelOption } from './shared-options.js';
import { type Ledger, memoryLedger } from './ledger.js';
import { type PriceTable, priceTable } from './price-table.js';
import { type UnknownModelPolicy, resolvePrice } from './resolve-price.js';
import { settledCost } from './settled-cost.js';

/** Options of {@link trackCost}. */
export interface TrackCostOptions {
  /** Default: `priceTable()`, the built-in prices. */
  prices?: PriceTable;
  /** What an unknown model means (default `'error'`: the call is refused before it is sent). */
  unknownModel?: UnknownModelPolicy;
  /** Where each call's cost is recorded (default: a new `memoryLedger()`, exposed as `.ledger`). */
  ledger?: Ledger;
  /** The spend anomaly alert: its options, or `false` to turn it off (default on, factor 5). */
  anomaly?: AnomalyOptions | false;
}

const optionsSchema = z.strictObject({
  prices: priceTableOption.optional(),
  unknownModel: unknownModelOption.optional(),
  ledger: z
    .custom<Ledger>((value) => typeof (value as Ledger | undefined)?.record === 'function', 'must be a Ledger')
    .optional(),
  anomaly: z.union([z.literal(false), anomalyOptionsSchema]).optional(),
});

/** The `trackCost` middleware, with the ledger it records to. */
export type TrackCostMiddleware = Middleware & { readonly ledger: Ledger };

/**
 * Records what every call really cost, from the usage the upstream
 * reported, in disjoint buckets (uncached input, cached input, output with
 * reasoning), for streams too. A stream cut before its usage arrived is
 * costed from the prompt count and the streamed text and marked
 * `estimated`, never recorded as $0. Emits `cost` (and `anomaly`, when a
 * call or a minute jumps past `factor` times its baseline), and records
 * to the ledger.
 *
 * Use it outermost: it registers for the call's settlement before calling
 * `next()`, so it hears the final outcome once, after retries and after the
 * caller read the stream.
 *
 * @param options - prices, unknown-model policy, ledger, anomaly alert
 * @throws ValidationError naming a bad option
 * @throws UnknownModelError (from the middleware) when the model has no price and `unknownModel` is `'error'`
 * @example
 * ```ts
 * const costs = trackCost();
 * const llm = createPipeline({ transport }).use(costs).use(trimContext()).use(budget({ limitUsd: 50, period: 'day' }));
 * llm.events.on('cost', (event) => metrics.add(event.usd, { model: event.model }));
 * const byTenant = await costs.ledger.report({ by: { tag: 'tenant' } });
 * ```
 */
export function trackCost(options: TrackCostOptions = {}): TrackCostMiddleware {
  const config = parseOptions(optionsSchema, options, 'trackCost');
  const prices = config.prices ?? priceTable();
  const policy = config.unknownModel ?? 'error';
  const ledger = config.ledger ?? memoryLedger();
  const detector = config.anomaly === false ? undefined : new AnomalyDetector(config.anomaly);
  const tracked = new WeakSet<CompletionContext>();

  async function record(ctx: CompletionContext, settlement: Settlement) {
    const match = resolvePrice(prices, ctx.request.model, policy === 'error' ? 'warn' : policy);
    const cost = settledCost(ctx, settlement, match);
    if (!cost) return;
    const { model, usd, buckets, estimated, priced } = cost;
    ctx.state.cost = { model, usd, buckets, estimated };
    ctx.events.emit('cost', { id: ctx.id, model, tags: ctx.tags, usd, buckets, estimated, priced });
    const now = ctx.clock.now();
    const tokens = buckets.uncachedInput.tokens + buckets.cachedInput.tokens + buckets.output.tokens;
    for (const event of detector?.observe({ id: ctx.id, model, tags: ctx.tags, tokens, usd, now }) ?? []) {
      ctx.events.emit('anomaly', event);
    }
    await ledger.record({ id: ctx.id, at: now, model, tags: ctx.tags, usd, buckets, estimated, priced });
  }

  const middleware = async function trackCost(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    // Placed inside a retry by mistake, a second registration would bind to
    // the previous attempt's settled response and cost it twice.
    if (tracked.has(ctx)) return next();
    tracked.add(ctx);
    if (!resolvePrice(prices, ctx.request.model, policy) && policy === 'warn') {
      ctx.events.emit('unknown-model', { id: ctx.id, model: ctx.request.model, by: 'trackCost' });
    }
    // Registered before next(): no response exists yet, so this hears the
    // whole call's final outcome (after retries, after the stream was read).
    ctx.onSettled((settlement) => record(ctx, settlement));
    await next();
  };
  return Object.assign(middleware, { ledger });
}
