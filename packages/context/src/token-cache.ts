import * as z from 'zod/mini';
import { parseOptions } from '@sluice/core/kit';
import type { TokenCount, Tokenizer } from './tokenizer.js';

/**
 * Options of {@link configureTokenCache}.
 *
 * @example
 * ```ts
 * const options: TokenCacheOptions = { maxEntries: 100_000 };
 * ```
 */
export interface TokenCacheOptions {
  /** How many texts each tokenizer's cache holds at most (default 20,000). */
  maxEntries?: number;
  /**
   * How many UTF-16 units of text each tokenizer's cache holds at most
   * (default 8,000,000, about 8–16 MB); a text longer than a quarter of it
   * is counted but not cached.
   */
  maxChars?: number;
}

// Built on the first call, not at import.
const optionsSchema = () =>
  z.strictObject({
    maxEntries: z.optional(z.number().check(z.int(), z.minimum(0))),
    maxChars: z.optional(z.number().check(z.int(), z.minimum(0))),
  });

const limits = { maxEntries: 20_000, maxChars: 8_000_000 };

/*
 * Two generations instead of a linked-list LRU: a hit in the young map
 * costs one Map lookup and no reordering, which keeps a 1,000-message
 * recount well under a millisecond. When the young map is full it becomes
 * the old one and the previous old one is dropped; a hit in the old map
 * moves the entry back to the young one. Memory is bounded by the limits,
 * split between the two generations.
 */
class TextCountCache {
  private young = new Map<string, TokenCount>();
  private old = new Map<string, TokenCount>();
  private youngChars = 0;

  get(text: string): TokenCount | undefined {
    const hit = this.young.get(text);
    if (hit !== undefined) return hit;
    const aged = this.old.get(text);
    if (aged !== undefined) this.add(text, aged);
    return aged;
  }

  add(text: string, count: TokenCount): void {
    if (limits.maxEntries === 0 || text.length * 4 > limits.maxChars) return;
    this.young.set(text, count);
    this.youngChars += text.length;
    if (this.young.size * 2 >= limits.maxEntries || this.youngChars * 2 >= limits.maxChars) {
      this.old = this.young;
      this.young = new Map();
      this.youngChars = 0;
    }
  }
}

const caches = new WeakMap<Tokenizer, TextCountCache>();
// The last tokenizer's cache, skipping the WeakMap on runs of counts with one tokenizer.
let last: { tokenizer: Tokenizer; cache: TextCountCache } | undefined;

function cacheOf(tokenizer: Tokenizer): TextCountCache {
  if (last?.tokenizer === tokenizer) return last.cache;
  let cache = caches.get(tokenizer);
  if (!cache) {
    cache = new TextCountCache();
    caches.set(tokenizer, cache);
  }
  last = { tokenizer, cache };
  return cache;
}

/**
 * Counts `text` with `tokenizer`, once: the count is cached by the
 * tokenizer and the exact text, so a message already counted is not
 * encoded again; internal.
 *
 * @param tokenizer - the tokenizer
 * @param text - the text
 * @example
 * ```ts
 * cachedCount(tokenizerFor('gpt-4o'), 'Hello'); // { tokens: 1, approximate: false }
 * ```
 */
export function cachedCount(tokenizer: Tokenizer, text: string): TokenCount {
  const cache = cacheOf(tokenizer);
  const known = cache.get(text);
  if (known) return known;
  const measured = tokenizer.measure?.(text);
  const count: TokenCount = measured
    ? { tokens: measured.tokens, approximate: tokenizer.approximate || measured.approximate }
    : { tokens: tokenizer.count(text), approximate: tokenizer.approximate };
  cache.add(text, count);
  return count;
}

/**
 * Sets the bounds of the per-tokenizer count caches, for every tokenizer
 * from now on. `{ maxEntries: 0 }` turns caching off.
 *
 * @param options - `maxEntries` and `maxChars`
 * @throws ValidationError when a bound is not a non-negative integer
 * @example
 * ```ts
 * configureTokenCache({ maxEntries: 100_000, maxChars: 64_000_000 }); // a large history per call
 * ```
 */
export function configureTokenCache(options: TokenCacheOptions): void {
  const parsed = parseOptions(optionsSchema(), options, 'configureTokenCache');
  limits.maxEntries = parsed.maxEntries ?? limits.maxEntries;
  limits.maxChars = parsed.maxChars ?? limits.maxChars;
}
