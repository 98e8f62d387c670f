import type { Usage } from '@sluice/core';
import type { PriceEntry } from './price-table.js';
import { type UsageTokens, usageTokens } from './usage-tokens.js';

/** Tokens of one kind and what they cost. */
export interface CostBucket {
  tokens: number;
  usd: number;
}

/**
 * A call's cost in disjoint buckets: every billed token is in exactly one.
 * Reasoning tokens are output tokens (`reasoningTokens` says how many of them).
 */
export interface CostBuckets {
  /** Prompt tokens not served from the provider's cache (`prompt_tokens − cached`). */
  uncachedInput: CostBucket;
  cachedInput: CostBucket;
  output: CostBucket & { reasoningTokens: number };
}

/** A priced call. */
export interface CostBreakdown {
  usd: number;
  buckets: CostBuckets;
  /** The long-prompt tier applied (its `abovePromptTokens`), if one did. */
  tier: number | undefined;
}

/**
 * The per-million prices that apply to a call with `promptTokens` prompt
 * tokens: the highest tier it is above, else the base prices; internal.
 *
 * @param entry - the model's price entry
 * @param promptTokens - the call's prompt tokens, cached ones included
 * @example
 * ```ts
 * ratesFor(entry, 250_000); // { input: 2.5, cachedInput: 0.25, output: 15, tier: 200_000 } for gemini-2.5-pro
 * ```
 */
export function ratesFor(entry: PriceEntry, promptTokens: number): { input: number; cachedInput: number; output: number; tier: number | undefined } {
  const tier = tierFor(entry, promptTokens);
  const prices = tier ?? entry;
  // No cached price means no discount is assumed: never under-count.
  return { input: prices.input, cachedInput: prices.cachedInput ?? prices.input, output: prices.output, tier: tier?.abovePromptTokens };
}

/** The highest tier `promptTokens` is above (tiers are sorted), without a closure: this runs on every call priced. */
function tierFor(entry: PriceEntry, promptTokens: number): NonNullable<PriceEntry['tiers']>[number] | undefined {
  const { tiers } = entry;
  if (tiers === undefined) return undefined;
  for (let index = tiers.length - 1; index >= 0; index--) {
    const tier = tiers[index];
    if (tier !== undefined && promptTokens > tier.abovePromptTokens) return tier;
  }
  return undefined;
}

/**
 * What token counts cost in USD, as {@link costOfTokens} prices them,
 * without building the buckets: what `budget` reserves on every call; internal.
 *
 * @param entry - the model's price entry
 * @param uncachedInput - prompt tokens not served from the cache
 * @param cachedInput - prompt tokens served from the cache
 * @param output - output tokens
 * @example
 * ```ts
 * usdOfTokens(entry, 3_000, 0, 800); // 0.0124 for gpt-4.1
 * ```
 */
export function usdOfTokens(entry: PriceEntry, uncachedInput: number, cachedInput: number, output: number): number {
  const prices = tierFor(entry, uncachedInput + cachedInput) ?? entry;
  return (uncachedInput * prices.input + cachedInput * (prices.cachedInput ?? prices.input) + output * prices.output) / 1e6;
}

/**
 * Prices a call's reported usage. Cached prompt tokens come from
 * `prompt_tokens_details.cached_tokens` (OpenAI) or `prompt_cache_hit_tokens`
 * (DeepSeek); output is `completion_tokens`, which includes reasoning. When
 * `total_tokens` shows reasoning was reported outside `completion_tokens`
 * (some OpenAI-compatible endpoints do), it is added to the output. A
 * field that is not a count (missing, negative, NaN, a string) counts as 0
 * here, so the result is always a number; `trackCost` and `budget` count
 * such a call's tokens themselves instead.
 *
 * @param usage - the usage the upstream reported
 * @param entry - the model's price entry
 * @example
 * ```ts
 * const { usd, buckets } = costOfUsage(response.usage!, priceTable().lookup('gpt-4.1')!.entry);
 * ```
 */
export function costOfUsage(usage: Usage, entry: PriceEntry): CostBreakdown {
  return costOfUsageTokens(usageTokens(usage), entry);
}

/**
 * Prices sanitised usage counts, 0 standing in for an unusable prompt or
 * completion count; internal.
 *
 * @param tokens - from `usageTokens`
 * @param entry - the model's price entry
 * @example
 * ```ts
 * costOfUsageTokens(usageTokens(usage), entry).usd;
 * ```
 */
export function costOfUsageTokens(tokens: UsageTokens, entry: PriceEntry): CostBreakdown {
  const prompt = tokens.prompt ?? 0;
  const { cached, reasoning } = tokens;
  return costOfTokens({ uncachedInput: prompt - cached, cachedInput: cached, output: billedOutput(tokens), reasoning }, entry);
}

/**
 * {@link costOfUsageTokens}' USD alone, without its buckets; internal.
 *
 * @param tokens - from `usageTokens`
 * @param entry - the model's price entry
 * @example
 * ```ts
 * usdOfUsageTokens(usageTokens(usage), entry) === costOfUsageTokens(usageTokens(usage), entry).usd; // true
 * ```
 */
export function usdOfUsageTokens(tokens: UsageTokens, entry: PriceEntry): number {
  const prompt = tokens.prompt ?? 0;
  return usdOfTokens(entry, prompt - tokens.cached, tokens.cached, billedOutput(tokens));
}

/** Output tokens as billed: reasoning reported outside `completion_tokens` (the total shows it) is added. */
function billedOutput(tokens: UsageTokens): number {
  const output = tokens.completion ?? 0;
  const prompt = tokens.prompt ?? 0;
  return tokens.reasoning > 0 && tokens.total === prompt + output + tokens.reasoning ? output + tokens.reasoning : output;
}

/**
 * Prices token counts by bucket, the tier chosen by the whole prompt; internal.
 *
 * @param tokens - uncached input, cached input and output tokens (reasoning included)
 * @param entry - the model's price entry
 * @example
 * ```ts
 * costOfTokens({ uncachedInput: 3_000, cachedInput: 0, output: 800 }, entry).usd; // 0.0124 for gpt-4.1
 * ```
 */
export function costOfTokens(
  tokens: { uncachedInput: number; cachedInput: number; output: number; reasoning?: number },
  entry: PriceEntry,
): CostBreakdown {
  const rates = ratesFor(entry, tokens.uncachedInput + tokens.cachedInput);
  const uncachedInput = bucket(tokens.uncachedInput, rates.input);
  const cachedInput = bucket(tokens.cachedInput, rates.cachedInput);
  const output = { tokens: tokens.output, usd: (tokens.output * rates.output) / 1e6, reasoningTokens: tokens.reasoning ?? 0 };
  return {
    usd: (tokens.uncachedInput * rates.input + tokens.cachedInput * rates.cachedInput + tokens.output * rates.output) / 1e6,
    buckets: { uncachedInput, cachedInput, output },
    tier: rates.tier,
  };
}

const bucket = (tokens: number, perMillion: number): CostBucket => ({ tokens, usd: (tokens * perMillion) / 1e6 });
