import { breaker, type BreakerMiddleware } from '@sluice/breaker';
import { trimContext } from '@sluice/context';
import { createPipeline, type Middleware, openAICompatible, type Pipeline, ValidationError } from '@sluice/core';
import { trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { router, type RouterOptions } from '@sluice/router';
import type { KeyOption } from '@sluice/core/kit';
import { apiKeyFrom, budgetFrom, cacheFrom, costTracker } from './build-pipeline.js';
import { loadPrices } from './load-prices.js';
import type { batchConfigSchema } from './options.js';
import type { SharedStore } from './shared-store.js';
import type * as z from 'zod/mini';

type BatchOutput = z.output<typeof batchConfigSchema>;

/** One deployment's circuit, as `/health` reports it. */
export interface DeploymentCircuit {
  deployment: string;
  /** The public model it serves. */
  model: string;
  /** Its breaker's key (`origin|model`): internal, never reported. */
  key: string;
  circuit: BreakerMiddleware;
}

/** A routed pipeline and the circuits of its deployments. */
export interface RoutedPipeline {
  pipeline: Pipeline;
  circuits: DeploymentCircuit[];
  /** The public models the deployments serve. */
  models: string[];
}

/** How the command using a routed pipeline wants it built. */
export interface RoutedPipelineOptions {
  /** What the budget, the rate limit and the cache are kept by: `{ tag: 'tenant' }` for a server; default global. */
  limitKey?: KeyOption;
  /** `'always'` (a batch sums its spend from the `cost` events) or `'when-used'` (only with a ledger or `unknownModel: 'error'`). */
  costTracking: 'always' | 'when-used';
  /** Keep each answer's text, for a server that forwards it as the upstream sent it. */
  keepRawJson: boolean;
  /** Connections kept to each deployment. */
  connections: number;
  /** The store (and its clock) the `store` option made, if any. */
  shared?: SharedStore['pipeline'];
}

/** The configuration a routed pipeline reads: a batch's or a server's, with `deployments`. */
export type RoutedConfig = Omit<BatchOutput, 'deployments'> & { deployments: NonNullable<BatchOutput['deployments']> };

/**
 * The pipeline of a `sluice serve` or `sluice batch` with `deployments`.
 * Once a call (per tenant on a server): the cache, trimming and the rate
 * limit, then the router. Inside it, on each deployment a call is sent to,
 * as `@sluice/router` asks: cost and the budget, so every attempt is priced
 * at the model that deployment runs and recorded with its `deployment` tag,
 * then that deployment's own retry and circuit, so a deployment that fails
 * is retried, then passed over for the next, and its circuit opens without
 * touching the others'. A cache hit reaches no deployment: a `trackCost`
 * outside the cache records it alone, at $0 with what it saved.
 *
 * @param config - the validated configuration, with `deployments`
 * @param env - where the deployments' API keys are read from
 * @param options - the limits' key, when to track cost, whether to keep answers' text, connections per deployment
 * @throws ValidationError naming a bad deployment, routing option or unset key variable (`deployments.1.apiKeyEnv`, `routing.strategy`)
 */
export function buildRoutedPipeline(config: RoutedConfig, env: NodeJS.ProcessEnv, options: RoutedPipelineOptions): RoutedPipeline {
  const prices = loadPrices(config.prices);
  const unknownModel = config.unknownModel ?? 'warn';
  const key = options.limitKey === undefined ? {} : { key: options.limitKey };
  const circuits: DeploymentCircuit[] = [];
  const deployments = config.deployments.map((deployment, index) => {
    const apiKey = apiKeyFrom(deployment.apiKeyEnv, env, `deployments.${index}.apiKeyEnv`);
    const { baseUrl, apiKeyEnv: _env, ...rest } = deployment;
    return { ...rest, transport: openAICompatible({ baseUrl, apiKey, connections: options.connections, keepRawJson: options.keepRawJson }) };
  });
  // One of each for every deployment: one ledger, and one budget record per tenant whichever deployment spends it.
  const costs = costTracker(config, prices, unknownModel, options.costTracking);
  const spend = budgetFrom(config, prices, unknownModel, key);
  // One circuit per deployment, made now so that /health lists every deployment from the start.
  const breakers = new Map<string, BreakerMiddleware>();
  if (config.breaker !== false) {
    for (const deployment of deployments) {
      const circuit = breaker(config.breaker ?? {});
      breakers.set(deployment.id, circuit);
      circuits.push({ deployment: deployment.id, model: deployment.group ?? deployment.model, key: `${deployment.transport.origin}|${deployment.model}`, circuit });
    }
  }
  const inner = (deployment: { id: string }): Middleware[] => {
    const middleware: Middleware[] = [];
    if (costs) middleware.push(costs);
    if (spend) middleware.push(spend);
    if (config.retry !== false) middleware.push(retry(config.retry ?? {}));
    const circuit = breakers.get(deployment.id);
    if (circuit) middleware.push(circuit);
    return middleware;
  };
  let route: ReturnType<typeof router>;
  try {
    route = router({ ...(config.routing as Partial<RouterOptions> | undefined), deployments, middleware: inner, prices });
  } catch (error) {
    throw error instanceof ValidationError ? renamed(error) : error;
  }
  let pipeline = createPipeline({ transport: route.transport, ...options.shared });
  // The deployments record every attempt; what the cache answers reaches none of them, so it is recorded here.
  if (costs && config.cache) {
    pipeline = pipeline.use(trackCost({ prices, unknownModel, anomaly: false, ledger: costs.ledger, when: (ctx) => ctx.state.answeredBy !== undefined }));
  }
  // Not rawJson: the router hands on its deployments' answers, which the cache cannot vouch for.
  if (config.cache) pipeline = pipeline.use(cacheFrom(config.cache, options.limitKey, false));
  if (config.trim) pipeline = pipeline.use(trimContext(config.trim === true ? {} : config.trim));
  if (config.rpm !== undefined || config.tpm !== undefined) pipeline = pipeline.use(rateLimit({ rpm: config.rpm, tpm: config.tpm, ...key }));
  pipeline = pipeline.use(route);
  const models = [...new Set(config.deployments.map((deployment) => deployment.group ?? deployment.model))];
  return { pipeline, circuits, models };
}

/** The router names its fields `router.…`: in the config they are `deployments.…` and `routing.…`. */
function renamed(error: ValidationError): ValidationError {
  const field = error.field.replace(/^router\.deployments\b/, 'deployments').replace(/^router\./, 'routing.');
  return new ValidationError(field, error.message.slice(error.field.length + 2));
}
