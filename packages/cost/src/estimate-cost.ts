import { countMessages } from '@sluice/context';
import { type ChatCompletionRequest } from '@sluice/core';
import { chatCompletionRequestSchema, parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { costOfTokens, usdOfTokens } from './cost-of-usage.js';
import { type PriceMatch, type PriceTable, priceTable } from './price-table.js';
import { expectedOutputOption, priceTableOption, unknownModelOption } from './options.js';
import { type UnknownModelPolicy, resolvePrice } from './resolve-price.js';

/** The default typical answer length of an estimate: the original write-up's 800 tokens. */
export const defaultExpectedOutput = 800;

const optionsSchema = z.strictObject({
  prices: z.optional(priceTableOption),
  unknownModel: z.optional(unknownModelOption),
  expectedOutput: z.optional(expectedOutputOption),
  promptTokens: z.optional(z.number().check(z.int(), z.nonnegative())),
  cachedInputTokens: z.optional(z.number().check(z.int(), z.nonnegative())),
});

/** Options of {@link estimateCost}. */
export interface EstimateCostOptions {
  /** Default: `priceTable()`, the built-in prices. */
  prices?: PriceTable;
  /** What an unknown model means (default `'error'`); `'warn'` and `'free'` give an unpriced $0 estimate. */
  unknownModel?: UnknownModelPolicy;
  /**
   * The typical answer, for `expected`: a token count, or `{ ratio }` of the
   * prompt. Default 800 tokens. Never above the output cap.
   */
  expectedOutput?: number | { ratio: number };
  /** A prompt count you already made, so the prompt is not counted again. */
  promptTokens?: number;
  /** Prompt tokens you expect the provider's cache to serve (priced at `cachedInput` in `expected` only). */
  cachedInputTokens?: number;
}

/** A call's cost before it is sent. */
export interface CostEstimate {
  /** The price table key the model matched; undefined when it has no price. */
  model: string | undefined;
  priced: boolean;
  /** USD with the typical answer (and the expected cache hits). */
  expected: number;
  /** USD if the answer uses its whole cap and nothing comes from the cache: what a budget reserves. */
  worstCase: number;
  inputTokens: number;
  outputTokens: { expected: number; max: number };
  /** True when the prompt count is an estimate (no exact tokenizer for the model). */
  approximate: boolean;
}

/**
 * Prices a request before it is sent: `expected` with a typical answer,
 * `worstCase` with the answer at its cap (`max_completion_tokens ??
 * max_tokens ?? maxOutput`, times `n`).
 *
 * @param request - the chat-completions request
 * @param options - prices, unknown-model policy, typical answer length
 * @throws UnknownModelError when the model has no price and `unknownModel` is `'error'`
 * @throws ValidationError naming a bad option or request field
 * @example
 * ```ts
 * const { expected, worstCase } = estimateCost({ model: 'gpt-4.1', messages, max_completion_tokens: 1_000 });
 * ```
 */
export function estimateCost(request: ChatCompletionRequest, options: EstimateCostOptions = {}): CostEstimate {
  const config = parseOptions(optionsSchema, options, 'estimateCost');
  // The loose schema returns the caller's fields as they came, so the result has the request's type.
  const body = parseOptions(chatCompletionRequestSchema, request, 'request') as ChatCompletionRequest;
  const match = resolvePrice(config.prices ?? priceTable(), body.model, config.unknownModel ?? 'error');
  if (config.promptTokens !== undefined) return priceEstimate(match, body, config.promptTokens, false, config);
  const counted = countMessages(body.messages, body.model, body.tools ? { tools: body.tools } : undefined);
  return priceEstimate(match, body, counted.tokens, counted.approximate, config);
}

/**
 * The estimate for a prompt already counted; internal, shared with `budget`.
 *
 * @param match - the model's price, or undefined for an unpriced estimate
 * @param request - the request (its caps and `n`)
 * @param inputTokens - the prompt's tokens
 * @param approximate - whether that count is an estimate
 * @param options - the typical answer and expected cache hits
 * @example
 * ```ts
 * const { worstCase } = priceEstimate(match, ctx.request, count, approximate);
 * ```
 */
export function priceEstimate(
  match: PriceMatch | undefined,
  request: ChatCompletionRequest,
  inputTokens: number,
  approximate: boolean,
  options: { expectedOutput?: number | { ratio: number }; cachedInputTokens?: number } = {},
): CostEstimate {
  const choices = request.n ?? 1;
  const cap = outputCap(match, request);
  const typical = options.expectedOutput ?? defaultExpectedOutput;
  const perChoice = typeof typical === 'number' ? typical : Math.ceil(typical.ratio * inputTokens);
  const outputTokens = { expected: Math.min(perChoice, cap) * choices, max: cap * choices };
  if (!match) return { model: undefined, priced: false, expected: 0, worstCase: 0, inputTokens, outputTokens, approximate };
  const cached = Math.min(options.cachedInputTokens ?? 0, inputTokens);
  const expected = costOfTokens({ uncachedInput: inputTokens - cached, cachedInput: cached, output: outputTokens.expected }, match.entry);
  const worst = worstCaseUsd(match, request, inputTokens);
  return { model: match.model, priced: true, expected: expected.usd, worstCase: worst, inputTokens, outputTokens, approximate };
}

/**
 * A request's worst-case cost (every choice's answer at its cap, nothing
 * from the cache) for a prompt already counted: what `budget` reserves,
 * without building a whole estimate; internal.
 *
 * @param match - the model's price
 * @param request - the request (its caps and `n`)
 * @param inputTokens - the prompt's tokens
 * @example
 * ```ts
 * const reserved = worstCaseUsd(match, ctx.request, count);
 * ```
 */
export function worstCaseUsd(match: PriceMatch, request: ChatCompletionRequest, inputTokens: number): number {
  return usdOfTokens(match.entry, inputTokens, 0, outputCap(match, request) * (request.n ?? 1));
}

/**
 * The most output tokens one choice may have: the request's cap, else the
 * model's; never more than the model's, which the provider enforces (a
 * `max_tokens: 1e9` reserved $8,000 of gpt-4.1 and was refused as over budget).
 */
function outputCap(match: PriceMatch | undefined, request: ChatCompletionRequest): number {
  const asked = request.max_completion_tokens ?? request.max_tokens ?? undefined;
  const model = match?.entry.maxOutput;
  if (asked === undefined) return model ?? 0;
  return model === undefined ? asked : Math.min(asked, model);
}
