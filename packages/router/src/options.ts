import { type Middleware, SluiceError, type Store, type StoreErrorPolicy, type Transport, ValidationError } from '@sluice/core';
import { type KeyOption, parseOptions, upperBoundMs } from '@sluice/core/kit';
import { type PriceTable, priceTable } from '@sluice/cost';
import * as z from 'zod/mini';

/**
 * One place a model is served: a transport (base URL, key, provider) and
 * the model name it expects there.
 *
 * @example
 * ```ts
 * const azure: Deployment = { id: 'azure', transport: openAICompatible({ baseUrl, apiKey }), model: 'gpt-4.1-prod', group: 'gpt-4.1' };
 * ```
 */
export interface Deployment {
  /** A unique name, used in events, `ctx.state.router`, the `deployment` tag and sticky records. */
  id: string;
  transport: Transport;
  /** The model name this upstream expects in the request. */
  model: string;
  /** The public model name callers ask for (default `model`): deployments sharing it are equivalent. */
  group?: string;
  /** Share of traffic for `weighted` routing within its group (default 1). */
  weight?: number;
  /** Calls in flight this deployment takes at most; a full one is skipped without a request. */
  maxConcurrency?: number;
  /** Prompt plus output tokens the model takes (default: `prices.contextWindow(model)`, read when the router is made). */
  contextWindow?: number;
}

/** How one deployment is picked among equivalent ones. */
export type RoutingStrategy = 'weighted' | 'least-busy' | 'latency' | 'cost';

/** Which failures move a call to the next deployment; final errors (400, 401, aborts) never do. */
export interface FallbackOn {
  /** Retryable errors and upstream faults: 5xx, resets, cut streams (default true). */
  retryable?: boolean;
  /** `CIRCUIT_OPEN` from the deployment's breaker (default true). */
  circuitOpen?: boolean;
  /** The upstream's 429 and a local limiter's refusal (default true). */
  rateLimit?: boolean;
  /** Timeouts of an attempt (default true). */
  timeout?: boolean;
  /** The upstream said the prompt is too long: try the next deployment whose window fits (default true). */
  contextLength?: boolean;
}

/** When a call is hedged: sent again to another deployment while the first has not answered. */
export interface HedgeOptions {
  /** Wait this long for a first chunk before hedging (default 2,000; the delay until `percentile` has samples). */
  delayMs?: number;
  /** Hedge at this percentile (0–1) of recent times to first chunk instead, once 20 were seen. */
  percentile?: number;
  /** Bounds of the percentile delay (default 0 and `Infinity`). */
  minMs?: number;
  maxMs?: number;
  /** Hedges earned per call: 0.1 lets hedges add at most 10% to the requests sent (default 0.1). */
  ratio?: number;
}

/** How `latency` routing reads its figures. */
export interface LatencyOptions {
  /**
   * A deployment's figure is stale once it has had no new sample for this
   * long (default 60,000): it then gets one call at a time again, as an
   * unmeasured one does, until a new sample says how fast it is now. So a
   * deployment that was slow once is tried again later, not left idle for good.
   */
  staleMs?: number;
  /**
   * Share the load among every deployment within this fraction of the
   * fastest (default 0: the fastest alone): `0.2` picks at random among
   * those at most 20% slower than the fastest, as LiteLLM's
   * `lowest_latency_buffer` does, so one deployment is not sent every call.
   */
  buffer?: number;
}

/** Options of {@link router}. */
export interface RouterOptions {
  deployments: readonly Deployment[];
  /** The middleware each deployment's own inner pipeline runs (its breaker, limits, budget, cost), outermost first. */
  middleware?: (deployment: Deployment) => readonly Middleware[];
  /** How a deployment is picked within a group (default `'weighted'`). */
  strategy?: RoutingStrategy;
  /** How `latency` routing treats old figures and near-ties (see {@link LatencyOptions}). */
  latency?: LatencyOptions;
  /** Groups to try, in order, after a group's own deployments failed: `{ 'claude-sonnet-4.5': ['gpt-4.1', 'deepseek-v3.2'] }`. */
  fallbacks?: Readonly<Record<string, readonly string[]>>;
  /** Where a content-filter refusal goes: `{ 'gpt-4.1': ['deepseek-v3.2'] }`; without an entry, the refusal is the answer. */
  contentFilterFallbacks?: Readonly<Record<string, readonly string[]>>;
  /** Which failures fall back: the switches, or your own test (final errors never fall back). */
  fallbackOn?: FallbackOn | ((error: SluiceError) => boolean);
  /** Most deployments one call is sent to, hedges included (default: as many as it may reach). */
  maxHops?: number;
  /** Keep calls with the same key on the same deployment while it is healthy: `{ key: { tag: 'tenant' } }`. */
  sticky?: { key: KeyOption; ttlMs?: number };
  /** Hedging; off by default. */
  hedge?: HedgeOptions;
  /** Prices and context windows of models (default: `priceTable()` from `@sluice/cost`). */
  prices?: PriceTable;
  /** How long a deployment that refused (open circuit, 429, full limit) without a `retryAfterMs` is skipped (default 1,000). */
  cooldownMs?: number;
  /**
   * The longest a deployment is passed over for a refusal's `retryAfterMs`
   * (default 600,000: 10 minutes). A 429 asking for a day (or a malformed
   * Retry-After asking for years) passes it over this long; a refusal after
   * that passes it over again. `Infinity` honours any.
   */
  maxCooldownMs?: number;
  /** Where sticky records live (default: the call's store) and what a store failure does (default `'open'`). */
  store?: Store;
  onStoreError?: StoreErrorPolicy;
  /** A number in [0, 1): the tie-breaker of `least-busy` and `latency` (default `Math.random`). */
  random?: () => number;
}

const isFunction = (value: unknown) => typeof value === 'function';

const deploymentSchema = z.strictObject({
  id: z.string().check(z.minLength(1)),
  transport: z.custom<Transport>((value) => typeof (value as Transport | undefined)?.send === 'function', 'must be a transport'),
  model: z.string().check(z.minLength(1)),
  group: z.optional(z.string().check(z.minLength(1))),
  weight: z.optional(z.number().check(z.positive())),
  maxConcurrency: z.optional(z.number().check(z.int(), z.positive())),
  contextWindow: z.optional(z.number().check(z.int(), z.positive())),
});

const chain = z.optional(z.record(z.string(), z.readonly(z.array(z.string().check(z.minLength(1))))));

const optionsSchema = z.strictObject({
  deployments: z.readonly(z.array(deploymentSchema).check(z.minLength(1))),
  middleware: z.optional(z.custom<RouterOptions['middleware']>(isFunction, 'must be a function of the deployment')),
  strategy: z.optional(z.enum(['weighted', 'least-busy', 'latency', 'cost'])),
  latency: z.optional(
    z.strictObject({
      staleMs: z.optional(z.number().check(z.positive())),
      buffer: z.optional(z.number().check(z.nonnegative())),
    }),
  ),
  fallbacks: chain,
  contentFilterFallbacks: chain,
  fallbackOn: z.optional(
    z.union([
      z.custom<(error: SluiceError) => boolean>(isFunction),
      z.strictObject({
        retryable: z.optional(z.boolean()),
        circuitOpen: z.optional(z.boolean()),
        rateLimit: z.optional(z.boolean()),
        timeout: z.optional(z.boolean()),
        contextLength: z.optional(z.boolean()),
      }),
    ]),
  ),
  maxHops: z.optional(z.number().check(z.int(), z.positive())),
  sticky: z.optional(z.strictObject({ key: z.custom<KeyOption>(), ttlMs: z.optional(z.number().check(z.positive())) })),
  hedge: z.optional(
    z.strictObject({
      delayMs: z.optional(z.number().check(z.nonnegative())),
      percentile: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
      minMs: z.optional(z.number().check(z.nonnegative())),
      maxMs: z.optional(z.number().check(z.positive())),
      ratio: z.optional(z.number().check(z.minimum(0), z.maximum(1))),
    }),
  ),
  prices: z.optional(z.custom<PriceTable>((value) => typeof (value as PriceTable | undefined)?.lookup === 'function', 'must be a PriceTable')),
  cooldownMs: z.optional(z.number().check(z.nonnegative())),
  maxCooldownMs: z.optional(upperBoundMs),
  store: z.optional(z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store')),
  onStoreError: z.optional(z.enum(['open', 'closed', 'memory'])),
  random: z.optional(z.custom<() => number>(isFunction, 'must be a function')),
});

/** A deployment with its defaults filled in and its window and price looked up; internal. */
export interface ResolvedDeployment extends Deployment {
  readonly group: string;
  readonly weight: number;
  /** Undefined when neither the deployment nor the price table knows it: never skipped for length. */
  readonly contextWindow: number | undefined;
  /** Input plus output USD per million tokens, for `cost` routing (`Infinity` when unknown). */
  readonly priceUsd: number;
  /** Position in `deployments`, for stable ordering. */
  readonly index: number;
}

/** The router's options resolved; internal. */
export interface ResolvedOptions {
  deployments: readonly ResolvedDeployment[];
  groups: ReadonlyMap<string, readonly ResolvedDeployment[]>;
  middleware: (deployment: Deployment) => readonly Middleware[];
  strategy: RoutingStrategy;
  latency: Required<LatencyOptions>;
  fallbacks: Readonly<Record<string, readonly string[]>>;
  contentFilterFallbacks: Readonly<Record<string, readonly string[]>>;
  fallbackOn: (error: SluiceError) => boolean;
  maxHops: number | undefined;
  sticky: { key: KeyOption; ttlMs: number } | undefined;
  hedge: Required<Omit<HedgeOptions, 'percentile'>> & { percentile: number | undefined } | undefined;
  cooldownMs: number;
  maxCooldownMs: number;
  store: Store | undefined;
  onStoreError: StoreErrorPolicy;
  random: () => number;
}

/**
 * Validates and resolves the router's options; internal.
 *
 * @param options - what {@link router} was given
 * @throws ValidationError naming the bad field (`router.deployments.1.model`)
 */
export function resolveOptions(options: RouterOptions): ResolvedOptions {
  const parsed = parseOptions(optionsSchema, options, 'router');
  const prices = parsed.prices ?? priceTable();
  const seen = new Set<string>();
  const groups = new Map<string, ResolvedDeployment[]>();
  const deployments = parsed.deployments.map((deployment, index): ResolvedDeployment => {
    if (seen.has(deployment.id)) throw validation(`deployments.${index}.id`, `"${deployment.id}" is used twice`);
    seen.add(deployment.id);
    const entry = prices.lookup(deployment.model)?.entry;
    const resolved = {
      ...deployment,
      group: deployment.group ?? deployment.model,
      weight: deployment.weight ?? 1,
      contextWindow: deployment.contextWindow ?? prices.contextWindow(deployment.model),
      priceUsd: entry ? entry.input + entry.output : Infinity,
      index,
    };
    groups.set(resolved.group, [...(groups.get(resolved.group) ?? []), resolved]);
    return resolved;
  });
  for (const [field, table] of [['fallbacks', parsed.fallbacks], ['contentFilterFallbacks', parsed.contentFilterFallbacks]] as const) {
    for (const [from, to] of Object.entries(table ?? {})) {
      // An entry for a model the router does not serve would never be read: a typo the caller should hear about.
      if (!groups.has(from)) throw validation(`${field}.${from}`, `no deployment serves "${from}"`);
      for (const [index, group] of to.entries()) {
        if (!groups.has(group)) throw validation(`${field}.${from}.${index}`, `no deployment serves "${group}"`);
      }
    }
  }
  if (parsed.latency !== undefined && parsed.strategy !== 'latency') {
    throw validation('latency', `applies only to strategy 'latency' (strategy is '${parsed.strategy ?? 'weighted'}')`);
  }
  const hedge = parsed.hedge;
  if (hedge?.minMs !== undefined && hedge.maxMs !== undefined && hedge.minMs > hedge.maxMs) {
    throw validation('hedge.minMs', `${hedge.minMs} is above hedge.maxMs (${hedge.maxMs})`);
  }
  return {
    deployments,
    groups,
    middleware: parsed.middleware ?? (() => []),
    strategy: parsed.strategy ?? 'weighted',
    latency: { staleMs: parsed.latency?.staleMs ?? 60_000, buffer: parsed.latency?.buffer ?? 0 },
    fallbacks: parsed.fallbacks ?? {},
    contentFilterFallbacks: parsed.contentFilterFallbacks ?? {},
    fallbackOn: fallbackTest(parsed.fallbackOn),
    maxHops: parsed.maxHops,
    sticky: parsed.sticky ? { key: parsed.sticky.key, ttlMs: parsed.sticky.ttlMs ?? 3_600_000 } : undefined,
    hedge: hedge && {
      delayMs: hedge.delayMs ?? 2_000,
      percentile: hedge.percentile,
      minMs: hedge.minMs ?? 0,
      maxMs: hedge.maxMs ?? Infinity,
      ratio: hedge.ratio ?? 0.1,
    },
    cooldownMs: parsed.cooldownMs ?? 1_000,
    maxCooldownMs: parsed.maxCooldownMs ?? 600_000,
    store: parsed.store,
    onStoreError: parsed.onStoreError ?? 'open',
    random: parsed.random ?? Math.random,
  };
}

function validation(field: string, message: string): ValidationError {
  return new ValidationError(`router.${field}`, message);
}

/** The error categories a caller switches on, from the errors' own data and their stable codes. */
function fallbackTest(option: RouterOptions['fallbackOn']): (error: SluiceError) => boolean {
  if (typeof option === 'function') return option;
  const on = { retryable: true, circuitOpen: true, rateLimit: true, timeout: true, contextLength: true, ...option };
  return (thrown) => {
    const error = lastCause(thrown);
    switch (error.code) {
      case 'CIRCUIT_OPEN':
        return on.circuitOpen;
      case 'RATE_LIMITED':
      case 'LIMIT_REJECTED':
        return on.rateLimit;
      case 'TIMEOUT':
        return on.timeout;
      case 'CONTEXT_LENGTH_EXCEEDED':
        return on.contextLength;
      default:
        return on.retryable && (error.retryable || error.upstreamFault);
    }
  };
}

/**
 * The error that decides: an error wrapping another (a retry that gave up
 * wraps its last attempt's error, and is itself not retryable, since the
 * same upstream failed every time) is judged by what it wraps, because
 * another deployment is not the same upstream.
 */
export function lastCause(error: SluiceError): SluiceError {
  let current = error;
  for (let depth = 0; depth < 8 && !current.final && SluiceError.is(current.cause); depth++) current = current.cause;
  return current;
}
