import { type CompletionContext, type Middleware, type Settlement } from '@sluice/core';
import { keepsChainRules, parseOptions } from '@sluice/core/kit';
import { AnomalyDetector } from './anomaly-detector.js';
import type { CostBuckets } from './cost-of-usage.js';
import { type CostRecord, kRecordNow, type Ledger, spendLedger } from './ledger.js';
import { type TrackCostOptions, trackCostOptionsSchema } from './options.js';
import { priceTable } from './price-table.js';
import { resolvePrice } from './resolve-price.js';
import { settledCost } from './settled-cost.js';

/** What `trackCost` leaves in `ctx.state.cost` once the call settled. */
export interface CostState {
  model: string;
  usd: number;
  buckets: CostBuckets;
  estimated: boolean;
}

/** The `trackCost` middleware, with the ledger it records to. */
export type TrackCostMiddleware = Middleware & { readonly ledger: Ledger };

/**
 * Records what every call really cost, from the usage the upstream
 * reported, in disjoint buckets (uncached input, cached input, output with
 * reasoning), for streams too. A stream cut before its usage arrived is
 * costed from the prompt count and the streamed text and marked
 * `estimated`, never recorded as $0. Emits `cost` (and `cost-anomaly`, when a
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
  const config = parseOptions(trackCostOptionsSchema, options, 'trackCost');
  const prices = config.prices ?? priceTable();
  const policy = config.unknownModel ?? 'error';
  const ledger = config.ledger ?? spendLedger();
  const detector = config.anomaly === false ? undefined : new AnomalyDetector(config.anomaly);
  // Marks the calls this middleware registered for, on the call's own state:
  // an entry per call in a WeakSet cost about 0.17 µs more, mostly in the
  // garbage collector's handling of its entries.
  const tracked = Symbol('trackCost');

  // The spend ledger's own record answers at once on an in-process store: a
  // call's settlement then waits on no promise (a ledger of the user's own goes through `record`).
  const recordNow = (ledger as { [kRecordNow]?: (record: CostRecord, ctx?: CompletionContext) => Promise<void> | undefined })[kRecordNow];

  const { when } = config;

  function record(ctx: CompletionContext, settlement: Settlement): Promise<void> | undefined {
    if (when !== undefined && !when(ctx)) return undefined;
    const match = resolvePrice(prices, ctx.request.model, policy === 'error' ? 'warn' : policy);
    const settled = settledCost(ctx, settlement, match);
    if (!settled) return undefined;
    // Answered without the upstream (a cache hit): nothing was billed, and
    // what the answer would have cost is the saving.
    // Another call was charged for this call's request (a shared stream it left early): $0, and nothing saved.
    const { answeredBy, costCarriedBy } = ctx.state;
    const { model, estimated, priced } = settled;
    const billed = answeredBy === undefined && costCarriedBy === undefined;
    const usd = billed ? settled.usd : 0;
    const buckets = billed ? settled.buckets : unbilled(settled.buckets);
    const savedUsd = answeredBy === undefined ? 0 : settled.usd;
    ctx.state.cost = { model, usd, buckets, estimated };
    // Built only for a listener: most pipelines read spend from the ledger.
    if (ctx.events.listenerCount('cost') > 0) {
      ctx.events.emit('cost', { id: ctx.id, model, tags: ctx.tags, usd, buckets, estimated, priced, savedUsd, answeredBy });
    }
    const now = ctx.clock.now();
    if (detector) {
      const tokens = buckets.uncachedInput.tokens + buckets.cachedInput.tokens + buckets.output.tokens;
      for (const event of detector.observe({ id: ctx.id, model, tags: ctx.tags, tokens, usd, now })) ctx.events.emit('cost-anomaly', event);
    }
    const entry: CostRecord = { id: ctx.id, at: now, model, tags: ctx.tags, usd, buckets, estimated, priced, savedUsd, answeredBy };
    return recordNow ? recordNow(entry, ctx) : ledger.record(entry, ctx);
  }

  // Not async: it only registers and passes the call on, and an async
  // function returning next()'s promise costs a promise and two microtasks more.
  const middleware = keepsChainRules(function trackCost(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    // Placed inside a retry by mistake, a second registration would bind to
    // the previous attempt's settled response and cost it twice.
    const state = ctx.state as Record<symbol, unknown>;
    if (state[tracked]) return next();
    state[tracked] = true;
    try {
      if (!resolvePrice(prices, ctx.request.model, policy) && policy === 'warn') {
        ctx.events.emit('price-unknown', { id: ctx.id, model: ctx.request.model, by: 'trackCost' });
      }
    } catch (error) {
      return Promise.reject(error);
    }
    // Registered before next(): no response exists yet, so this hears the
    // whole call's final outcome (after retries, after the stream was read).
    ctx.onSettled((settlement) => record(ctx, settlement));
    return next();
  });
  return Object.assign(middleware, { ledger });
}

/** The same token counts at no cost: what a call answered without the upstream was billed. */
function unbilled(buckets: CostBuckets): CostBuckets {
  return {
    uncachedInput: { ...buckets.uncachedInput, usd: 0 },
    cachedInput: { ...buckets.cachedInput, usd: 0 },
    output: { ...buckets.output, usd: 0 },
  };
}
