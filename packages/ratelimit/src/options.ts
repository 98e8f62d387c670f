import { type ChatCompletionRequest, type CompletionContext, type Store, type StoreErrorPolicy, ValidationError } from '@sluice/core';
import { estimateTokens, type KeyedState, keyedState, type KeyOption, parseOptions, promptTokens, upperBoundMs } from '@sluice/core/kit';
import * as z from 'zod/mini';
import type { SlidingWindow } from './bucket.js';

/**
 * One limit in its general form: at most `limit` in any sliding window of
 * `windowMs`. The whole limit may go at once, and it is also the sustained
 * rate.
 */
export interface WindowLimit {
  /** How many (requests, or tokens) a window may admit. */
  limit: number;
  /** The sliding window, in milliseconds. Default 60 000. */
  windowMs?: number;
}

/** Options of {@link rateLimit}; every field is optional, but at least one limit must be set. */
export interface RateLimitOptions {
  /** Requests per minute: shorthand for `requests: { limit: rpm, windowMs: 60_000 }`. */
  rpm?: number;
  /** Tokens per minute: shorthand for `tokens: { limit: tpm, windowMs: 60_000 }`. */
  tpm?: number;
  /** Requests per sliding window. */
  requests?: WindowLimit;
  /** Tokens per window (prompt plus output cap reserved, corrected to real usage). */
  tokens?: WindowLimit;
  /** Requests in flight at once, per key, in this process. */
  concurrency?: number;
  /**
   * Which window a request counts against: `'global'` (default), `'model'`,
   * `'origin-model'`, `{ tag, missing? }` or `(ctx) => string`, as in every
   * stateful sluice middleware.
   */
  key?: KeyOption;
  /** `'wait'` (default): queue FIFO until admitted. `'reject'`: throw `LimitRejectedError` at once. */
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
  /**
   * The longest pause the upstream's answer can put on a key, in ms. A
   * longer `Retry-After` or reset (a daily quota's hours, or a malformed
   * header's years, kept in a shared store for every instance) pauses this
   * long; a 429 after it pauses again. Default 600 000 (10 minutes: more
   * than a per-minute limit's reset, which OpenAI can give as `6m0s`);
   * `Infinity` honours any.
   */
  maxPauseMs?: number;
  /** Where the window state lives. Default: the pipeline's `ctx.store`. */
  store?: Store;
  /**
   * What a failing store does to a call. `'open'` (default): the call goes
   * ahead unlimited and nothing is recorded, since a limiter that fails
   * closed would turn a store outage into an outage of every call.
   * `'closed'`: the call fails with `STORE_UNAVAILABLE`. `'memory'`: this
   * process keeps limiting on its own in-memory windows. Either way a
   * `store-error` event says so.
   */
  onStoreError?: StoreErrorPolicy;
  /** Names this limiter's records in the store. Default: derived from its limits, so equal limiters share state. */
  id?: string;
}

const positiveInt = z.number().check(z.int(), z.positive());
const windowLimitSchema = z.strictObject({
  limit: positiveInt,
  windowMs: z.optional(positiveInt),
});
const isFunction = (value: unknown) => typeof value === 'function';
const optionsSchema = z.strictObject({
  rpm: z.optional(positiveInt),
  tpm: z.optional(positiveInt),
  requests: z.optional(windowLimitSchema),
  tokens: z.optional(windowLimitSchema),
  concurrency: z.optional(positiveInt),
  // keyedState validates the key option itself, naming rateLimit.key.
  key: z.optional(z.custom<KeyOption>(() => true)),
  mode: z.optional(z.enum(['wait', 'reject'])),
  maxWaitMs: z.optional(z.number().check(z.nonnegative())),
  maxQueue: z.optional(z.number().check(z.int(), z.nonnegative())),
  defaultMaxTokens: z.optional(positiveInt),
  countTokens: z.optional(z.custom<RateLimitOptions['countTokens']>(isFunction, 'must be a function')),
  pauseOn429: z.optional(z.boolean()),
  paceFromHeaders: z.optional(z.boolean()),
  maxPauseMs: z.optional(upperBoundMs),
  store: z.optional(z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store')),
  onStoreError: z.optional(z.enum(['open', 'closed', 'memory'])),
  id: z.optional(z.string().check(z.minLength(1))),
});

/** What the limiter engine needs, resolved from the options. */
export interface LimiterConfig {
  requests: SlidingWindow | undefined;
  tokens: SlidingWindow | undefined;
  concurrency: number | undefined;
  mode: 'wait' | 'reject';
  maxWaitMs: number;
  maxQueue: number;
  /** The windows' records, keyed and namespaced `sluice:ratelimit:`, on the store the policy says. */
  state: KeyedState;
  /** This limiter's part of every record's key (`r100/60000`), before the call's key. */
  prefix: string;
  /** The longest pause it sets: a stored pause further off is not one it could have set, and is not obeyed. */
  maxPauseMs: number;
}

/** The resolved options: the engine's config and the per-request settings. */
export interface ResolvedOptions {
  limiter: LimiterConfig;
  /** The prompt's tokens; synchronous unless `countTokens` returns a promise. */
  countPrompt: (ctx: CompletionContext) => number | Promise<number>;
  defaultMaxTokens: number;
  pauseOn429: boolean;
  paceFromHeaders: boolean;
  maxPauseMs: number;
}

/**
 * Validates and resolves {@link RateLimitOptions}; internal.
 *
 * @param options - what the caller passed to `rateLimit`
 * @throws ValidationError naming the field (`rateLimit.tokens.windowMs`)
 * @example
 * ```ts
 * const { limiter } = resolveOptions({ rpm: 100 });
 * ```
 */
export function resolveOptions(options: RateLimitOptions): ResolvedOptions {
  const parsed = parseOptions(optionsSchema, options, 'rateLimit');
  if (parsed.rpm !== undefined && parsed.requests) throw new ValidationError('rateLimit.requests', 'give rpm or requests, not both');
  if (parsed.tpm !== undefined && parsed.tokens) throw new ValidationError('rateLimit.tokens', 'give tpm or tokens, not both');
  const requests = windowOf(parsed.requests ?? (parsed.rpm === undefined ? undefined : { limit: parsed.rpm }));
  const tokens = windowOf(parsed.tokens ?? (parsed.tpm === undefined ? undefined : { limit: parsed.tpm }));
  if (!requests && !tokens && parsed.concurrency === undefined) {
    throw new ValidationError('rateLimit', 'set at least one of rpm, tpm, requests, tokens or concurrency');
  }
  const describe = (name: string, window: SlidingWindow | undefined) => (window ? [`${name}${window.limit}/${window.windowMs}`] : []);
  const prefix = parsed.id ?? ([...describe('r', requests), ...describe('t', tokens)].join(',') || 'concurrency');
  const state = keyedState({
    name: 'ratelimit',
    key: parsed.key,
    defaultKey: 'global',
    field: 'rateLimit.key',
    store: parsed.store,
    onStoreError: parsed.onStoreError ?? 'open',
  });
  const countTokens = parsed.countTokens;
  return {
    limiter: {
      requests,
      tokens,
      concurrency: parsed.concurrency,
      mode: parsed.mode ?? 'wait',
      maxWaitMs: parsed.maxWaitMs ?? Infinity,
      maxQueue: parsed.maxQueue ?? 10_000,
      maxPauseMs: parsed.maxPauseMs ?? 600_000,
      state,
      prefix,
    },
    countPrompt: (ctx) => {
      if (!countTokens) return checkedCount(promptTokens(ctx)?.count ?? estimateTokens(ctx.request));
      const count = countTokens(ctx.request, ctx);
      return typeof count === 'number' ? checkedCount(count) : Promise.resolve(count).then(checkedCount);
    },
    defaultMaxTokens: parsed.defaultMaxTokens ?? 1024,
    pauseOn429: parsed.pauseOn429 ?? true,
    paceFromHeaders: parsed.paceFromHeaders ?? false,
    maxPauseMs: parsed.maxPauseMs ?? 600_000,
  };
}

/** A prompt count as reserved: whole tokens, or a ValidationError for nonsense. */
function checkedCount(count: number): number {
  if (!(Number.isFinite(count) && count >= 0)) {
    throw new ValidationError('rateLimit.countTokens', `must return a finite number of 0 or more, got ${String(count)}`);
  }
  return Math.ceil(count);
}

function windowOf(limit: WindowLimit | undefined): SlidingWindow | undefined {
  return limit ? { limit: limit.limit, windowMs: limit.windowMs ?? 60_000 } : undefined;
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
