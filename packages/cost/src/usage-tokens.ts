import type { Usage } from '@sluice/core';

/*
 * The one gate through which numbers from outside (an upstream's usage, a
 * custom transport, a stored budget, a custom ledger's caller) enter cost's
 * arithmetic. A NaN that slipped into a sum would stay there for good, and
 * every comparison with it is false: a budget's `spent + held > limit`
 * would never refuse again. So every such number is read here: a finite,
 * non-negative number passes, anything else (a string, NaN, Infinity, a
 * negative count, a missing field) is `undefined` for the caller to replace
 * with something it can defend (a counted estimate, the reservation, 0).
 */

/**
 * A token count read from untrusted data: a number from 0 to
 * `Number.MAX_SAFE_INTEGER`, rounded down; otherwise undefined (a count
 * beyond that is no count, and priced it would overflow to Infinity); internal.
 *
 * @param value - the field as it arrived
 * @example
 * ```ts
 * tokenCount(12); // 12
 * tokenCount('abc'); // undefined
 * ```
 */
export function tokenCount(value: unknown): number | undefined {
  if (typeof value !== 'number' || !(value >= 0)) return undefined;
  const count = Math.floor(value);
  return Number.isSafeInteger(count) ? count : undefined;
}

/**
 * A USD amount read from untrusted data: a finite number ≥ 0, otherwise
 * undefined; internal.
 *
 * @param value - the amount as it arrived
 * @example
 * ```ts
 * usdAmount(Number.NaN); // undefined
 * ```
 */
export function usdAmount(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined;
}

/** A usage's token counts, each a clean number or undefined when the upstream's was unusable; internal. */
export interface UsageTokens {
  prompt: number | undefined;
  completion: number | undefined;
  /** Cached prompt tokens, never more than `prompt` (0 when unreported or unusable). */
  cached: number;
  /** Reasoning tokens (0 when unreported or unusable). */
  reasoning: number;
  total: number | undefined;
}

/**
 * The token counts of a reported usage, sanitised: `prompt` and
 * `completion` are undefined when missing or not a count (so the caller
 * can count them itself instead), cached and reasoning tokens 0; internal.
 * Cached tokens come from `prompt_tokens_details.cached_tokens` (OpenAI)
 * or `prompt_cache_hit_tokens` (DeepSeek).
 *
 * @param usage - the usage as reported, whatever its fields hold
 * @example
 * ```ts
 * usageTokens({ prompt_tokens: 'abc', completion_tokens: 20, total_tokens: 20 } as unknown as Usage);
 * // { prompt: undefined, completion: 20, cached: 0, reasoning: 0, total: 20 }
 * ```
 */
export function usageTokens(usage: Usage): UsageTokens {
  const fields = usage as unknown as Record<string, unknown>;
  const prompt = tokenCount(fields.prompt_tokens);
  const cached = tokenCount(detail(fields.prompt_tokens_details, 'cached_tokens')) ?? tokenCount(fields.prompt_cache_hit_tokens) ?? 0;
  return {
    prompt,
    completion: tokenCount(fields.completion_tokens),
    cached: Math.min(prompt ?? 0, cached),
    reasoning: tokenCount(detail(fields.completion_tokens_details, 'reasoning_tokens')) ?? 0,
    total: tokenCount(fields.total_tokens),
  };
}

/** A field of a usage's details object, whatever the details hold. */
function detail(details: unknown, field: string): unknown {
  return typeof details === 'object' && details !== null ? (details as Record<string, unknown>)[field] : undefined;
}
