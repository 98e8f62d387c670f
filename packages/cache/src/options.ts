import type { ChatCompletionRequest, CompletionContext } from '@sluice/core';
import { type KeyOption, parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import type { CacheStorage } from './cache-storage.js';
import { lruStorage } from './lru-storage.js';

/**
 * Options of {@link cache}. Every field is optional.
 *
 * @example
 * ```ts
 * const options: CacheOptions = {
 *   ttlMs: 3_600_000,
 *   when: (request) => request.temperature === 0,
 *   storage: lruStorage({ maxEntries: 5_000, maxBytes: 64 * 1024 * 1024 }),
 * };
 * ```
 */
export interface CacheOptions {
  /** How long an answer is served from the cache (default 3 600 000: one hour). */
  ttlMs?: number;
  /**
   * Which calls are cached. Default {@link isDeterministic}: `temperature: 0`
   * or an explicit `seed`, the requests whose answer is meant to repeat. A
   * call tagged `{ cache: 'on' }` is cached whatever this says, one tagged
   * `{ cache: 'off' }` never is, and `{ cache: 'refresh' }` skips the read
   * and stores the fresh answer.
   */
  when?: (request: ChatCompletionRequest, ctx: CompletionContext) => boolean;
  /**
   * Whose answers a call may be served: `'global'` (default: the same
   * request to the same upstream gets the same answer, whoever sent it),
   * or, to keep tenants apart, `{ tag: 'tenant' }`, `'model'` or a function
   * of the call, as in every stateful sluice middleware.
   */
  key?: KeyOption;
  /**
   * Where answers are kept. Default: `lruStorage()`, in this process,
   * bounded by entries and bytes; `storeBackend(store)` keeps them in any
   * core `Store` (a Redis one, to share them between instances).
   */
  storage?: CacheStorage;
  /**
   * Top-level request fields left out of the key because they do not change
   * the answer (default `user`, `metadata`, `store`, `safety_identifier`,
   * `prompt_cache_key`). `stream` never is part of it: streams and
   * completions are kept apart anyway.
   */
  ignoreFields?: readonly string[];
  /** Longest a storage read or write may take before it counts as failed (default 50; in-process storage gets no timer). */
  timeoutMs?: number;
  /**
   * Store and share an answer as the upstream's own JSON text (core's
   * `rawJson`) where the transport kept it (`keepRawJson: true`), instead
   * of serialising the completion, or each chunk, again (default false).
   * Turn it on only when no middleware inside the cache changes an answer
   * in place: the text is the answer as the transport read it, so such an
   * edit would reach the caller who sent the request but not the stored
   * entry, nor the calls it is shared with. Replacing `ctx.response` or
   * the chunks is safe: a new value has no text, and is serialised. A
   * stream that nothing inside read or replaced is kept as the upstream's
   * text without this option (no middleware can have edited its chunks).
   */
  rawJson?: boolean;
}

/** The options with their defaults; internal. */
export interface ResolvedCacheOptions {
  ttlMs: number;
  when: (request: ChatCompletionRequest, ctx: CompletionContext) => boolean;
  key: KeyOption;
  storage: CacheStorage;
  ignoreFields: ReadonlySet<string>;
  timeoutMs: number;
  rawJson: boolean;
}

const isFunction = (value: unknown) => typeof value === 'function';

const keySchema = z.union([
  z.enum(['global', 'model', 'origin-model']),
  z.strictObject({ tag: z.string().check(z.minLength(1)), missing: z.optional(z.string()) }),
  z.custom<(ctx: CompletionContext) => string>(isFunction, 'must be a function'),
]);

const cacheOptionsSchema = z.strictObject({
  ttlMs: z.optional(z.number().check(z.int(), z.positive())),
  when: z.optional(z.custom<CacheOptions['when']>(isFunction, 'must be a function')),
  key: z.optional(keySchema),
  storage: z.optional(
    z.custom<CacheStorage>(
      (value) => ['get', 'set', 'delete'].every((method) => isFunction((value as unknown as Record<string, unknown> | null | undefined)?.[method])),
      'must be a CacheStorage (get, set, delete)',
    ),
  ),
  ignoreFields: z.optional(z.array(z.string().check(z.minLength(1)))),
  timeoutMs: z.optional(z.number().check(z.positive())),
  rawJson: z.optional(z.boolean()),
});

/** Answers for keys other caches use for the same thing. */
const hints = {
  ttl: 'use ttlMs',
  maxAge: 'use ttlMs',
  store: 'use storage: storeBackend(store)',
  shouldCache: 'use when',
  maxEntries: 'set it on the storage: storage: lruStorage({ maxEntries })',
  maxBytes: 'set it on the storage: storage: lruStorage({ maxBytes })',
  max: 'set it on the storage: storage: lruStorage({ maxEntries })',
};

/**
 * The default `when`: a request is cached when its answer is meant to
 * repeat, that is with `temperature: 0` or an explicit `seed`.
 *
 * @param request - the request as it will be sent
 * @example
 * ```ts
 * cache({ when: (request, ctx) => isDeterministic(request) || ctx.tags.feature === 'faq' });
 * ```
 */
export function isDeterministic(request: ChatCompletionRequest): boolean {
  const seed = (request as { seed?: unknown }).seed;
  return request.temperature === 0 || (typeof seed === 'number' && Number.isFinite(seed));
}

export const defaultIgnoredFields: readonly string[] = ['user', 'metadata', 'store', 'safety_identifier', 'prompt_cache_key'];

/**
 * Validates {@link CacheOptions} and fills in the defaults; internal.
 *
 * @param options - what the caller passed
 * @throws ValidationError naming the bad field (`cache.ttlMs`)
 */
export function resolveCacheOptions(options: CacheOptions): ResolvedCacheOptions {
  const parsed = parseOptions(cacheOptionsSchema, options, 'cache', hints);
  return {
    ttlMs: parsed.ttlMs ?? 3_600_000,
    when: parsed.when ?? isDeterministic,
    key: (parsed.key as KeyOption | undefined) ?? 'global',
    storage: parsed.storage ?? lruStorage(),
    ignoreFields: new Set([...(parsed.ignoreFields ?? defaultIgnoredFields), 'stream']),
    timeoutMs: parsed.timeoutMs ?? 50,
    rawJson: parsed.rawJson ?? false,
  };
}
