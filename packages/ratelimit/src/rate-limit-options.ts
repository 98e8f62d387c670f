import { type ChatCompletionRequest, type CompletionContext, type Store, ValidationError } from '@sluice/core';
import { estimateTokens, parseOptions, promptTokens } from '@sluice/core/kit';
import { z } from 'zod';
import { type Bucket, createBucket } from './bucket.js';

/** One limit in its general form: at most `limit` per `windowMs`. */
export interface WindowLimit {
  /** How many (requests, or tokens) a window may admit. */
  limit: number;
  /** The sliding window, in milliseconds. Default 60 000. */
  windowMs?: number;
  /**
   * How much of `limit` may go at once after a quiet spell; the rest is
   * refilled evenly at (limit − burst) per window, so a larger burst means a
   * lower sustained rate. At least 0, below `limit`. Default 10% of `limit`.
   */
  burst?: number;
}

/** Which bucket a request counts against. */
export type RateLimitKey = 'global' | 'model' | { tag: string } | ((ctx: CompletionContext) => string);

/** Options of {@link rateLimit}; every field is optional, but at least one limit must be set. */
export interface RateLimitOptions {
  /** Requests per minute: shorthand for `requests: { limit: rpm, windowMs: 60_000 }`. */
  rpm?: number;
  /** Tokens per minute: shorthand for `tokens: { limit: tpm, windowMs: 60_000 }`. */
  tpm?: number;
  /** Requests per window, with an optional `burst`. */
  requests?: WindowLimit;
  /** Tokens per window (prompt plus output cap reserved, corrected to real usage). */
  tokens?: WindowLimit;
  /** Requests in flight at once, per key, in this process. */
  concurrency?: number;
  /** Which bucket a request counts against. Default `'global'`. */
  key?: RateLimitKey;
  /** `'wait'` (default): queue FIFO until admitted. `'reject'`: throw `RateLimitedError` at once. */
  mode?: 'wait' | 'reject';
  /** Longest a request may wait, in milliseconds. Default: no limit but the call's deadline. */
  maxWaitMs?: number;
  /** Most requests waiting per key; more are rejected with limit `'queue'`. Default 10 000. */
  maxQueue?: number;
  /** Output tokens reserved when the request sets neither `max_completion_tokens` nor `max_tokens`. Default 1024. */
  defaultMaxTokens?: number;
  /**
   * Counts a request's prompt tokens. Default: the count another middleware
   * already made (`promptTokens(ctx)`), else core's cheap `estimateTokens`.
   */
  countTokens?: (request: ChatCompletionRequest, ctx: CompletionContext) => number | Promise<number>;
  /** Pause the key when the upstream answers 429 with a Retry-After. Default true. */
  pauseOn429?: boolean;
  /** Also pause when the provider's `x-ratelimit-remaining-*` headers reach 0, until their reset. Default false. */
  paceFromHeaders?: boolean;
  /** Where the window state lives. Default: the pipeline's `ctx.store`. */
  store?: Store;
  /** Names this limiter's keys in the store. Default: derived from its limits, so equal limiters share state. */
  id?: string;
}

const positiveInt = z.number().int().positive();
const windowLimitSchema = z.strictObject({
  limit: positiveInt,
  windowMs: positiveInt.optional(),
  burst: z.number().int().nonnegative().optional(),
});
const isFunction = (value: unknown) => typeof value === 'function';
const optionsSchema = z.strictObject({
  rpm: positiveInt.optional(),
  tpm: positiveInt.optional(),
  requests: windowLimitSchema.optional(),
  tokens: windowLimitSchema.optional(),
  concurrency: positiveInt.optional(),
  key: z
    .union([
      z.literal('global'),
      z.literal('model'),
      z.strictObject({ tag: z.string().min(1) }),
      z.custom<(ctx: CompletionContext) => string>(isFunction, "must be 'global', 'model', { tag } or a function"),
    ])
    .optional(),
  mode: z.enum(['wait', 'reject']).optional(),
  maxWaitMs: z.number().nonnegative().optional(),
  maxQueue: z.number().int().nonnegative().optional(),
  defaultMaxTokens: positiveInt.optional(),
  countTokens: z.custom<RateLimitOptions['countTokens']>(isFunction, 'must be a function').optional(),
  pauseOn429: z.boolean().optional(),
  paceFromHeaders: z.boolean().optional(),
  store: z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store').optional(),
  id: z.string().min(1).optional(),
});

/** What the limiter engine needs, resolved from the options. */
export interface LimiterConfig {
  requests: Bucket | undefined;
  tokens: Bucket | undefined;
  concurrency: number | undefined;
  mode: 'wait' | 'reject';
  maxWaitMs: number;
  maxQueue: number;
  store: Store | undefined;
  /** Prefix of every store key. */
  prefix: string;
}

/** The resolved options: the engine's config and the per-request settings. */
export interface ResolvedOptions {
  limiter: LimiterConfig;
  keyOf: (ctx: CompletionContext) => string;
  /** The prompt's tokens; synchronous unless `countTokens` returns a promise. */
  countPrompt: (ctx: CompletionContext) => number | Promise<number>;
  defaultMaxTokens: number;
  pauseOn429: boolean;
  paceFromHeaders: boolean;
}

/** 10% of the limit (so ≥ 90% of it is sustained), at least 1 and below the limit. */
export const defaultBurst = (limit: number): number => (limit === 1 ? 0 : Math.max(1, Math.floor(limit / 10)));

/**
 * Validates and resolves {@link RateLimitOptions}; internal.
 *
 * @param options - what the caller passed to `rateLimit`
 * @throws ValidationError naming the field (`rateLimit.tokens.burst`)
 * @example
 * ```ts
 * const { limiter } = resolveOptions({ rpm: 100 });
 * ```
 */
export function resolveOptions(options: RateLimitOptions): ResolvedOptions {
  const parsed = parseOptions(optionsSchema, options, 'rateLimit');
  if (parsed.rpm !== undefined && parsed.requests) throw new ValidationError('rateLimit.requests', 'give rpm or requests, not both');
  if (parsed.tpm !== undefined && parsed.tokens) throw new ValidationError('rateLimit.tokens', 'give tpm or tokens, not both');
  const requests = bucketOf('requests', parsed.requests ?? (parsed.rpm === undefined ? undefined : { limit: parsed.rpm }));
  const tokens = bucketOf('tokens', parsed.tokens ?? (parsed.tpm === undefined ? undefined : { limit: parsed.tpm }));
  if (!requests && !tokens && parsed.concurrency === undefined) {
    throw new ValidationError('rateLimit', 'set at least one of rpm, tpm, requests, tokens or concurrency');
  }
  const describe = (name: string, bucket: Bucket | undefined) =>
    bucket ? [`${name}${bucket.limit}/${bucket.windowMs}/${bucket.burst}`] : [];
  const prefix = `ratelimit:${parsed.id ?? [...describe('r', requests), ...describe('t', tokens)].join(',')}`;
  const countTokens = parsed.countTokens;
  return {
    limiter: {
      requests,
      tokens,
      concurrency: parsed.concurrency,
      mode: parsed.mode ?? 'wait',
      maxWaitMs: parsed.maxWaitMs ?? Infinity,
      maxQueue: parsed.maxQueue ?? 10_000,
      store: parsed.store,
      prefix,
    },
    keyOf: keyResolver(parsed.key ?? 'global'),
    countPrompt: (ctx) => {
      if (!countTokens) return checkedCount(promptTokens(ctx)?.count ?? estimateTokens(ctx.request));
      const count = countTokens(ctx.request, ctx);
      return typeof count === 'number' ? checkedCount(count) : Promise.resolve(count).then(checkedCount);
    },
    defaultMaxTokens: parsed.defaultMaxTokens ?? 1024,
    pauseOn429: parsed.pauseOn429 ?? true,
    paceFromHeaders: parsed.paceFromHeaders ?? false,
  };
}

/** A prompt count as reserved: whole tokens, or a ValidationError for nonsense. */
function checkedCount(count: number): number {
  if (!(Number.isFinite(count) && count >= 0)) {
    throw new ValidationError('rateLimit.countTokens', `must return a finite number of 0 or more, got ${String(count)}`);
  }
  return Math.ceil(count);
}

function bucketOf(field: 'requests' | 'tokens', limit: WindowLimit | undefined): Bucket | undefined {
  if (!limit) return undefined;
  const bucket = createBucket({
    limit: limit.limit,
    windowMs: limit.windowMs ?? 60_000,
    burst: limit.burst ?? defaultBurst(limit.limit),
  });
  if (typeof bucket === 'string') {
    throw new ValidationError(`rateLimit.${field}.${bucket.startsWith('burst') ? 'burst' : 'limit'}`, bucket);
  }
  return bucket;
}

function keyResolver(key: RateLimitKey): (ctx: CompletionContext) => string {
  if (key === 'global') return () => 'global';
  if (key === 'model') return (ctx) => `model:${ctx.request.model}`;
  if (typeof key === 'function') {
    return (ctx) => {
      const value = key(ctx);
      if (typeof value !== 'string') throw new ValidationError('rateLimit.key', `must return a string, got ${typeof value}`);
      return value;
    };
  }
  const { tag } = key;
  return (ctx) => `${tag}:${ctx.tags[tag] ?? ''}`;
}

/**
 * The output tokens a request may produce: its cap (`max_completion_tokens`,
 * else `max_tokens`, else `fallback`) for each of its `n` choices.
 *
 * @param request - the request as it will be sent
 * @param fallback - the cap assumed when the request sets none
 * @example
 * ```ts
 * outputCap({ model: 'm', messages, max_tokens: 500, n: 2 }, 1024); // 1000
 * ```
 */
export function outputCap(request: ChatCompletionRequest, fallback: number): number {
  const cap = request.max_completion_tokens ?? request.max_tokens ?? fallback;
  return cap * (request.n ?? 1);
}
