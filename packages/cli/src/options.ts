import { ValidationError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';

const positiveInt = z.number().check(z.int(), z.positive());
const positive = z.number().check(z.positive());
const envName = z.string().check(z.regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be an environment variable name'));

/** One upstream of several (`deployments`), as `@sluice/router` takes it, its key named by a variable. */
export const deploymentSchema = z.strictObject({
  id: z.string().check(z.minLength(1)),
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKeyEnv: z.optional(envName),
  model: z.string().check(z.minLength(1)),
  group: z.optional(z.string().check(z.minLength(1))),
  weight: z.optional(z.number().check(z.positive())),
  maxConcurrency: z.optional(z.number().check(z.int(), z.positive())),
  contextWindow: z.optional(z.number().check(z.int(), z.positive())),
});

/**
 * What `sluice batch` takes, from a JSON config file (`--config`) with
 * flags on top. The schema is the reference: every key is optional and
 * an unknown key is an error with a "did you mean".
 */
export const batchConfigSchema = z.strictObject({
  /** The OpenAI-compatible endpoint, with its `/v1`. */
  baseUrl: z.optional(z.url({ protocol: /^https?$/ })),
  /** The environment variable holding the API key (default `OPENAI_API_KEY`). The key itself is never an option. */
  apiKeyEnv: z.optional(envName),
  /** Requests in flight at once (default 10). */
  concurrency: z.optional(positiveInt.check(z.maximum(10_000))),
  /** One deadline per request, retries included, in ms (default: none but the transport's own timeouts). */
  timeoutMs: z.optional(positive),
  /** Requests per minute (`rateLimit({ rpm })`). */
  rpm: z.optional(positiveInt),
  /** Tokens per minute (`rateLimit({ tpm })`). */
  tpm: z.optional(positiveInt),
  /** `retry()` options, or `false` for none (default: 3 attempts, 1-10 s backoff). */
  retry: z.optional(
    z.union([
      z.literal(false),
      z.strictObject({
        attempts: z.optional(positiveInt),
        backoff: z.optional(z.strictObject({ baseMs: z.optional(positive), factor: z.optional(z.number().check(z.minimum(1))), maxMs: z.optional(positive) })),
        maxRetryAfterMs: z.optional(z.number().check(z.nonnegative())),
      }),
    ]),
  ),
  /** `breaker()` options, or `false` for none (default: opens after 10 consecutive failures for 30 s). */
  breaker: z.optional(z.union([z.literal(false), z.strictObject({ failures: z.optional(positiveInt), openMs: z.optional(positive) })])),
  /** A spending limit: the batch stops (resumable) when the next request would exceed it. */
  budget: z.optional(z.union([z.literal(false), z.strictObject({ limitUsd: positive, period: z.optional(z.enum(['hour', 'day', 'month'])) })])),
  /**
   * Instead of one endpoint, several (`@sluice/router`): each a base URL,
   * the variable holding its key, the model name it expects, and the public
   * model (`group`) it serves. Calls are routed within a group by
   * `routing.strategy` and fall back to the next deployment, then along
   * `routing.fallbacks`; each deployment has its own retry and circuit.
   */
  deployments: z.optional(z.array(deploymentSchema).check(z.minLength(1))),
  /**
   * How `deployments` are used: `router()`'s `strategy`, `latency`,
   * `fallbacks`, `contentFilterFallbacks`, `fallbackOn`, `maxHops`,
   * `cooldownMs`, `maxCooldownMs` and `hedge`, as JSON (checked by the router, which names
   * the field).
   */
  routing: z.optional(z.record(z.string(), z.unknown())),
  /**
   * Answer repeated requests from an in-process cache (`cache()` with an
   * LRU), or its options: `ttlMs` (default one hour), `maxEntries` (default
   * 10,000), `maxBytes` (default 64 MiB). Only requests with `temperature: 0`
   * or a `seed` are cached; a hit costs $0 and the saving is in the ledger.
   * Off by default.
   */
  cache: z.optional(
    z.union([
      z.boolean(),
      z.strictObject({ ttlMs: z.optional(positive), maxEntries: z.optional(positiveInt), maxBytes: z.optional(positiveInt) }),
    ]),
  ),
  /**
   * Keep limits, budgets and circuits in Redis (`@sluice/redis` over
   * node-redis) instead of in this process, so that several processes
   * running the same config share them: `urlEnv` names the variable holding
   * the Redis URL (it may carry a password, so it is never an option),
   * `prefix` is put before every key. Default: in this process.
   */
  store: z.optional(
    z.strictObject({
      redis: z.strictObject({ urlEnv: envName, prefix: z.optional(z.string().check(z.regex(/^[^{}]*$/, 'must not contain { or }'))) }),
    }),
  ),
  /** Trim each request's history to fit its model's window (`trimContext()`), or its options. */
  trim: z.optional(z.union([z.boolean(), z.strictObject({ ratio: z.optional(z.number().check(z.gt(0), z.maximum(1))), maxTokens: z.optional(positiveInt) })])),
  /** Price overrides by model (`priceTable()` entries), or a JSON file of them. */
  prices: z.optional(z.union([z.string().check(z.minLength(1)), z.record(z.string(), z.unknown())])),
  /** What a model with no price does: `warn` (default: sent, costed $0), `free`, or `error` (refused). */
  unknownModel: z.optional(z.enum(['error', 'warn', 'free'])),
  /** A JSONL file every call's cost is appended to (`sluice cost --ledger` summarises it). */
  ledger: z.optional(z.string().check(z.minLength(1))),
  /** How often progress is printed when stderr is not a terminal (default 10,000 ms). */
  progressIntervalMs: z.optional(positive),
});

/** `sluice batch`'s configuration, as written. */
export type BatchConfig = z.input<typeof batchConfigSchema>;

/**
 * Validates a configuration, naming the bad field (`config.retry.attempts`).
 *
 * @param value - the parsed config file, or flags merged over it
 * @param name - prefix of field paths in errors
 * @throws ValidationError naming the bad field
 */
export function parseBatchConfig(value: unknown, name = 'config'): z.output<typeof batchConfigSchema> {
  const config = parseOptions(batchConfigSchema, value, name);
  if (config.deployments !== undefined && (config.baseUrl !== undefined || config.apiKeyEnv !== undefined)) {
    throw new ValidationError(`${name}.deployments`, 'give either baseUrl and apiKeyEnv or deployments, not both');
  }
  if (config.routing !== undefined && config.deployments === undefined) throw new ValidationError(`${name}.routing`, 'routes deployments: give deployments too');
  return config;
}

/**
 * Lays flags over a config file's values: a flag wins, and a nested flag
 * (`--attempts`) changes one field of its section, keeping the others.
 *
 * @param file - the config file's values
 * @param flags - the values given as flags
 */
export function mergeConfig(file: BatchConfig, flags: BatchConfig): BatchConfig {
  const merged: BatchConfig = { ...file };
  for (const [key, value] of Object.entries(flags) as Array<[keyof BatchConfig, unknown]>) {
    if (value === undefined) continue;
    const base = file[key];
    const both = typeof value === 'object' && value !== null && typeof base === 'object' && base !== null;
    (merged as Record<string, unknown>)[key] = both ? { ...base, ...value } : value;
  }
  return merged;
}
