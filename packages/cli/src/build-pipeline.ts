import { breaker, type BreakerMiddleware } from '@sluice/breaker';
import { cache, lruStorage } from '@sluice/cache';
import { trimContext } from '@sluice/context';
import { createPipeline, type Middleware, openAICompatible, type Pipeline, ValidationError } from '@sluice/core';
import type { KeyOption } from '@sluice/core/kit';
import { budget, type Ledger, type PriceTable, trackCost, type TrackCostMiddleware, type UnknownModelPolicy } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { fileLedger } from './file-ledger.js';
import { loadPrices } from './load-prices.js';
import type { SharedStore } from './shared-store.js';
import type { batchConfigSchema } from './options.js';
import type * as z from 'zod/mini';

type Config = z.output<typeof batchConfigSchema>;

/** Keeps nothing: the batch sums its spend from `cost` events itself. */
const noLedger: Ledger = {
  async record() {},
  async report() {
    return { since: 0, until: 0, rows: [], usd: 0, requests: 0, savedUsd: 0 };
  },
};

/**
 * The API key from the environment: the variable `apiKeyEnv` names, which
 * must then be set, or `OPENAI_API_KEY` when it is set. `null` means no key
 * (a local vLLM or Ollama). The key never appears in an error or a log.
 *
 * @param apiKeyEnv - the variable named by the user, if any
 * @param env - the environment
 * @param field - the option that named it, for the error (`deployments.1.apiKeyEnv`)
 * @throws ValidationError when a named variable is unset or empty
 */
export function apiKeyFrom(apiKeyEnv: string | undefined, env: NodeJS.ProcessEnv = process.env, field = 'apiKeyEnv'): string | null {
  const value = env[apiKeyEnv ?? 'OPENAI_API_KEY'];
  if (value !== undefined && value !== '') return value;
  if (apiKeyEnv !== undefined) throw new ValidationError(field, `the environment variable ${apiKeyEnv} is not set`);
  return null;
}

/** What the cost tracker and the budget read of a configuration. */
type Spending = Pick<Config, 'ledger' | 'budget'>;

/**
 * The cost tracker a command runs, if any: `'always'` (a batch sums its
 * spend from the `cost` events), or `'when-used'`, only with a ledger or
 * `unknownModel: 'error'` (a server, where nobody else hears the events).
 * Never the default ledger: it keeps a cell per tag set, and a batch tags
 * every call with its own custom_id.
 */
export function costTracker(config: Spending, prices: PriceTable, unknownModel: UnknownModelPolicy, costTracking: 'always' | 'when-used'): TrackCostMiddleware | undefined {
  if (costTracking === 'when-used' && config.ledger === undefined && unknownModel !== 'error') return undefined;
  return trackCost({ prices, unknownModel, anomaly: false, ledger: config.ledger ? fileLedger(config.ledger) : noLedger });
}

/** The `budget` option as a middleware, kept by `key` (a server's tenant), if there is one. */
export function budgetFrom(config: Spending, prices: PriceTable, unknownModel: UnknownModelPolicy, key: { key?: KeyOption }): Middleware | undefined {
  if (!config.budget) return undefined;
  return budget({ limitUsd: config.budget.limitUsd, period: config.budget.period ?? 'day', prices, unknownModel, ...key });
}

/**
 * The `cache` option as a middleware: an in-process LRU sized as it says.
 *
 * @param option - `true`, or `{ ttlMs, maxEntries, maxBytes }`
 * @param key - whose answers a call may be served (a server's tenant); default global
 * @param rawJson - store each answer's upstream text, over a transport that keeps it
 */
export function cacheFrom(option: true | { ttlMs?: number; maxEntries?: number; maxBytes?: number }, key: KeyOption | undefined, rawJson: boolean): Middleware {
  const { ttlMs, maxEntries, maxBytes } = option === true ? {} : option;
  const storage = lruStorage({ ...(maxEntries === undefined ? {} : { maxEntries }), ...(maxBytes === undefined ? {} : { maxBytes }) });
  return cache({ storage, rawJson, ...(ttlMs === undefined ? {} : { ttlMs }), ...(key === undefined ? {} : { key }) });
}

/** A pipeline, the breaker in it (for health), and the upstream's origin (the breaker's key prefix). */
export interface BuiltPipeline {
  pipeline: Pipeline;
  circuit: BreakerMiddleware | undefined;
  origin: string;
}

/**
 * The pipeline a batch or a server runs through, in the order DESIGN.md
 * gives: cost outermost (it hears each call's final outcome), then the
 * cache (a hit spends nothing, so nothing inside runs for it), then
 * trimming, the budget (prices the trimmed request), retry, the breaker
 * (an open circuit uses no rate), and the rate limit innermost (every
 * attempt is a real request).
 *
 * @param config - the validated configuration
 * @param env - where the API key is read from
 * @param limitKey - what the budget, the rate limit and the cache are kept by (`{ tag: 'tenant' }` for a server, so no
 *   tenant is served another's answers; default global)
 * @param costTracking - `'always'` (a batch sums its spend from the `cost` events), or `'when-used'`: only with a
 *   `ledger` or `unknownModel: 'error'` (a server, where nobody else hears the events)
 * @param keepRawJson - keep each checked answer's JSON text for core's `rawJson` (a server forwards it as is; none of
 *   the middleware added here rewrites an answer in place)
 * @param shared - the store (and its clock) the `store` option made, if any
 * @throws ValidationError naming a bad option
 */
export function buildPipelineParts(
  config: Omit<Config, 'progressIntervalMs'>,
  env: NodeJS.ProcessEnv = process.env,
  limitKey?: KeyOption,
  costTracking: 'always' | 'when-used' = 'always',
  keepRawJson = false,
  shared: SharedStore['pipeline'] = {},
): BuiltPipeline {
  const apiKey = apiKeyFrom(config.apiKeyEnv, env);
  const baseUrl = config.baseUrl ?? env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1';
  const concurrency = config.concurrency ?? 10;
  const prices = loadPrices(config.prices);
  const unknownModel = config.unknownModel ?? 'warn';
  const transport = openAICompatible({ baseUrl, apiKey, connections: Math.max(concurrency, 10), keepRawJson });
  const key = limitKey === undefined ? {} : { key: limitKey };
  let pipeline: Pipeline = createPipeline({ transport, ...shared });
  const costs = costTracker(config, prices, unknownModel, costTracking);
  if (costs) pipeline = pipeline.use(costs);
  // rawJson only over a transport that keeps each answer's text; nothing added after the cache rewrites an answer.
  if (config.cache) pipeline = pipeline.use(cacheFrom(config.cache, limitKey, keepRawJson));
  if (config.trim) pipeline = pipeline.use(trimContext(config.trim === true ? {} : config.trim));
  const spend = budgetFrom(config, prices, unknownModel, key);
  if (spend) pipeline = pipeline.use(spend);
  if (config.retry !== false) pipeline = pipeline.use(retry(config.retry ?? {}));
  let circuit: BreakerMiddleware | undefined;
  if (config.breaker !== false) pipeline = pipeline.use((circuit = breaker(config.breaker ?? {})));
  if (config.rpm !== undefined || config.tpm !== undefined) pipeline = pipeline.use(rateLimit({ rpm: config.rpm, tpm: config.tpm, ...key }));
  return { pipeline, circuit, origin: transport.origin };
}

/**
 * The pipeline a batch runs through ({@link buildPipelineParts}, one global budget and rate).
 *
 * @param config - the validated configuration
 * @param env - where the API key is read from
 * @throws ValidationError naming a bad option
 */
export function buildPipeline(config: Config, env: NodeJS.ProcessEnv = process.env, shared: SharedStore['pipeline'] = {}): Pipeline {
  return buildPipelineParts(config, env, undefined, 'always', false, shared).pipeline;
}
