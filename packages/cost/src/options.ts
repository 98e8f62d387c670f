import type { CompletionContext, Store, StoreErrorPolicy } from '@sluice/core';
import type { KeyOption } from '@sluice/core/kit';
import * as z from 'zod/mini';
import type { BudgetPeriod } from './budget-period.js';
import type { AnomalyMetric } from './events.js';
import type { Ledger } from './ledger.js';
import type { PriceTable } from './price-table.js';
import type { UnknownModelPolicy } from './resolve-price.js';

/** The `prices` option every factory takes; internal. */
export const priceTableOption = z.custom<PriceTable>(
  (value) => typeof (value as PriceTable | undefined)?.lookup === 'function',
  'must be a price table (priceTable())',
);

/** The `onStoreError` option of the stateful parts (budget, ledger); internal. */
export const storeErrorPolicyOption = z.enum(['open', 'closed', 'memory']);

/** The `unknownModel` option; internal. */
export const unknownModelOption = z.enum(['error', 'warn', 'free']);

/** The `expectedOutput` option: a token count or a ratio of the prompt; internal. */
export const expectedOutputOption = z.union([
  z.number().check(z.int(), z.nonnegative()),
  z.strictObject({ ratio: z.number().check(z.nonnegative()) }),
]);

/** Options of the spend anomaly alert (`trackCost({ anomaly })`). */
export interface AnomalyOptions {
  /** Fire when a figure reaches this many times its baseline (default 5). */
  factor?: number;
  /** Requests of a model seen before per-request figures can fire (default 20). */
  warmupRequests?: number;
  /** Active minutes of a model seen before per-minute figures can fire (default 5). */
  warmupMinutes?: number;
  /** Span of the per-request moving average, in requests (default 50). */
  requestWindow?: number;
  /** Span of the per-minute moving average, in active minutes (default 30). */
  minuteWindow?: number;
  /** Least time between two per-request events of one metric and model (default 60 000 ms). */
  cooldownMs?: number;
  /** Which figures to watch (default all four). */
  metrics?: AnomalyMetric[];
  /** Most models tracked at once; the least recently seen is dropped past it (default 256). */
  maxModels?: number;
}

/** The zod schema of {@link AnomalyOptions}; internal. */
export const anomalyOptionsSchema = z.strictObject({
  factor: z.optional(z.number().check(z.gt(1))),
  warmupRequests: z.optional(z.number().check(z.int(), z.positive())),
  warmupMinutes: z.optional(z.number().check(z.int(), z.positive())),
  requestWindow: z.optional(z.number().check(z.int(), z.positive())),
  minuteWindow: z.optional(z.number().check(z.int(), z.positive())),
  cooldownMs: z.optional(z.number().check(z.nonnegative())),
  metrics: z.optional(z.array(z.enum(['tokens-per-request', 'usd-per-request', 'tokens-per-minute', 'usd-per-minute']))),
  maxModels: z.optional(z.number().check(z.int(), z.positive())),
});

/** Options of {@link trackCost}. */
export interface TrackCostOptions {
  /** Default: `priceTable()`, the built-in prices. */
  prices?: PriceTable;
  /** What an unknown model means (default `'error'`: the call is refused before it is sent). */
  unknownModel?: UnknownModelPolicy;
  /** Where each call's cost is recorded (default: a new `spendLedger()`, exposed as `.ledger`). */
  ledger?: Ledger;
  /** The spend anomaly alert: its options, or `false` to turn it off (default on, factor 5). */
  anomaly?: AnomalyOptions | false;
  /**
   * Which calls are costed and recorded, asked once a call has settled
   * (default: every call). With a router whose deployments each run their
   * own `trackCost`, an outer one with `when: (ctx) => ctx.state.answeredBy
   * !== undefined` records only the calls answered without an upstream (a
   * cache's hits, their saving), so no call is counted twice.
   */
  when?: (ctx: CompletionContext) => boolean;
}

/** The zod schema of {@link TrackCostOptions}; internal. */
export const trackCostOptionsSchema = z.strictObject({
  prices: z.optional(priceTableOption),
  unknownModel: z.optional(unknownModelOption),
  ledger: z.optional(z.custom<Ledger>((value) => typeof (value as Ledger | undefined)?.record === 'function', 'must be a Ledger')),
  anomaly: z.optional(z.union([z.literal(false), anomalyOptionsSchema])),
  when: z.optional(z.custom<(ctx: CompletionContext) => boolean>((value) => typeof value === 'function', 'must be a function of the call')),
});

/** One spending limit: `limitUsd` per `period`, kept per `key`. */
export interface BudgetLimit {
  /**
   * What the limit is kept per, in the vocabulary every stateful sluice
   * middleware shares: `'global'` (default: one limit for every call),
   * `'model'`, `'origin-model'`, `{ tag: 'tenant' }` (one limit per tenant;
   * calls without the tag share the key `tenant:` plus `missing`, default
   * empty), or a function of the call returning the key.
   */
  key?: KeyOption;
  limitUsd: number;
  period: BudgetPeriod;
}

/** What to do with a call whose worst case does not fit. */
export type OnExceed = 'reject' | 'warn' | { downgradeTo: string | string[] };

/** Options of {@link budget}: one limit (`limitUsd`, `period`, `key`) or several (`limits`). */
export interface BudgetOptions extends Partial<BudgetLimit> {
  limits?: BudgetLimit[];
  /**
   * `'reject'` (default) throws `BudgetExceededError`; `{ downgradeTo }` sends
   * the call with the first cheaper model that fits; `'warn'` sends it anyway
   * (events only).
   */
  onExceed?: OnExceed;
  /** Shares of a limit at which `budget-warning` fires, once per period each (default `[0.8]`). */
  warnAt?: number[];
  /** Default: `priceTable()`, the built-in prices. */
  prices?: PriceTable;
  /** What an unknown model means (default `'error'`); `'warn'`/`'free'` reserve $0 for it. */
  unknownModel?: UnknownModelPolicy;
  /** Where spend is kept (default: each call's `ctx.store`, the pipeline's), under `sluice:cost:`. */
  store?: Store;
  /**
   * What a store failure does to a call about to be sent (default
   * `'closed'`: it is refused with `STORE_UNAVAILABLE`, since spend that
   * cannot be reserved cannot be bounded). `'open'` sends it unmetered;
   * `'memory'` meters it in this process until the store is back. When
   * the call settles, a store failure is only reported (`store-error`).
   */
  onStoreError?: StoreErrorPolicy;
  /** Budgets with the same name and store share their spend (default `'budget'`). */
  name?: string;
  /**
   * The longest a call's reservation is held (default 900 000: 15 minutes;
   * at least 1 000). A call with a deadline (`timeoutMs`) holds it until
   * then plus one slot (`holdMs / 16`), and never past this. A hold that outlives
   * its call, because the process holding it crashed, is released when it
   * expires; a call still running past it is charged in full when it
   * settles, but no longer holds back the calls admitted meanwhile.
   */
  holdMs?: number;
}

const keySchema = z.union([
  z.enum(['global', 'model', 'origin-model']),
  z.strictObject({ tag: z.string().check(z.minLength(1)), missing: z.optional(z.string()) }),
  z.custom<(ctx: CompletionContext) => string>((value) => typeof value === 'function', 'must be a KeyOption'),
]);
const periodSchema = z.enum(['hour', 'day', 'month']);
const limitSchema = z.strictObject({ key: z.optional(keySchema), limitUsd: z.number().check(z.positive()), period: periodSchema });

/** The zod schema of {@link BudgetOptions}; internal. */
export const budgetOptionsSchema = z
  .strictObject({
    key: z.optional(keySchema),
    limitUsd: z.optional(z.number().check(z.positive())),
    period: z.optional(periodSchema),
    limits: z.optional(z.array(limitSchema).check(z.minLength(1))),
    onExceed: z.optional(
      z.union([
        z.enum(['reject', 'warn']),
        z.strictObject({ downgradeTo: z.union([z.string().check(z.minLength(1)), z.array(z.string().check(z.minLength(1))).check(z.minLength(1))]) }),
      ]),
    ),
    warnAt: z.optional(z.array(z.number().check(z.positive()))),
    prices: z.optional(priceTableOption),
    unknownModel: z.optional(unknownModelOption),
    store: z.optional(z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store')),
    onStoreError: z.optional(storeErrorPolicyOption),
    name: z.optional(z.string().check(z.minLength(1))),
    holdMs: z.optional(z.number().check(z.int(), z.minimum(1_000), z.maximum(7 * 86_400_000))),
  })
  .check(
    z.superRefine((options, issues) => {
      const single = options.limitUsd !== undefined || options.period !== undefined || options.key !== undefined;
      if (options.limits && single) issues.addIssue({ code: 'custom', path: ['limits'], message: 'give either limits or limitUsd/period/key, not both' });
      if (!options.limits && options.limitUsd === undefined) issues.addIssue({ code: 'custom', path: ['limitUsd'], message: 'required (or give limits)' });
      if (!options.limits && options.period === undefined) issues.addIssue({ code: 'custom', path: ['period'], message: 'required (or give limits)' });
      const seen = new Map<string, number>();
      options.limits?.forEach((limit, index) => {
        // Two function keys may differ; only plain keys can be told equal.
        if (typeof limit.key === 'function') return;
        const key = `${JSON.stringify(limit.key ?? 'global')}:${limit.period}`;
        const first = seen.get(key);
        if (first !== undefined) issues.addIssue({ code: 'custom', path: ['limits', index], message: `same key and period as limits.${first}` });
        seen.set(key, index);
      });
    }),
  );
