import type { ChatCompletion, CompletionContext, Settlement } from '@sluice/core';
import { type CostBuckets, costOfTokens, costOfUsageTokens, usdOfUsageTokens } from './cost-of-usage.js';
import type { PriceEntry, PriceMatch } from './price-table.js';
import { promptCount, streamedTokens } from './prompt-count.js';
import { usageTokens } from './usage-tokens.js';

/** What a settled call cost; internal. */
export interface SettledCost {
  /** The price table key, or the model name as sent when it has no price. */
  model: string;
  usd: number;
  buckets: CostBuckets;
  estimated: boolean;
  priced: boolean;
}

// Unpriced calls still carry their token buckets (the anomaly alert and
// the ledger's token totals need them), at $0.
const unpriced: PriceEntry = { input: 0, output: 0, contextWindow: 1, maxOutput: 1 };

/**
 * The cost of a settled call: from the usage the upstream reported, or,
 * when none arrived or a count in it is unusable (missing, negative, NaN,
 * not a number), from the prompt count and the tokens of the text that
 * was delivered (marked `estimated`), for a stream the upstream accepted
 * and cut before its first chunk too (its prompt was billed). Undefined when
 * the upstream never accepted the request (an error before any answer); internal.
 *
 * @param ctx - the call, whose `request` is what was finally sent
 * @param settlement - how it ended
 * @param match - the model's price, if it has one
 * @example
 * ```ts
 * ctx.onSettled((settlement) => record(settledCost(ctx, settlement, match)));
 * ```
 */
export function settledCost(ctx: CompletionContext, settlement: Settlement, match: PriceMatch | undefined): SettledCost | undefined {
  const entry = match?.entry ?? unpriced;
  const model = match?.model ?? ctx.request.model;
  const priced = match !== undefined;
  const reported = settlement.usage ? usageTokens(settlement.usage) : undefined;
  if (reported?.prompt !== undefined && reported.completion !== undefined) {
    // Written out rather than spread: this runs on every call a cost middleware settles.
    const { usd, buckets } = costOfUsageTokens(reported, entry);
    return { model, priced, usd, buckets, estimated: false };
  }
  let text: string | undefined;
  if (settlement.response) text = completionText(settlement.response);
  // A stream the upstream accepted was billed for its prompt even if it was cut before its first chunk.
  else if (settlement.stream && (settlement.chunks > 0 || settlement.accepted)) text = settlement.streamedText;
  if (text === undefined && reported === undefined) return undefined;
  // What the upstream did report is kept; only the unusable counts are made here.
  const prompt = reported?.prompt ?? promptCount(ctx).count;
  const output = reported?.completion ?? (text === undefined ? 0 : streamedTokens(ctx, text));
  const cached = Math.min(reported?.cached ?? 0, prompt);
  const cost = costOfTokens({ uncachedInput: prompt - cached, cachedInput: cached, output, reasoning: reported?.reasoning ?? 0 }, entry);
  return { model, priced, usd: cost.usd, buckets: cost.buckets, estimated: true };
}

/**
 * What a settled call cost in USD, as {@link settledCost} prices it, built
 * without its buckets when the upstream reported usable usage (the usual
 * case): what `budget` charges on every call it settles; internal.
 *
 * @param ctx - the call, whose `request` is what was finally sent
 * @param settlement - how it ended
 * @param match - the model's price, if it has one
 * @example
 * ```ts
 * ctx.onSettled((settlement) => charge(settledUsd(ctx, settlement, prices.lookup(ctx.request.model)) ?? 0));
 * ```
 */
export function settledUsd(ctx: CompletionContext, settlement: Settlement, match: PriceMatch | undefined): number | undefined {
  if (settlement.usage) {
    const reported = usageTokens(settlement.usage);
    if (reported.prompt !== undefined && reported.completion !== undefined) return usdOfUsageTokens(reported, (match?.entry ?? unpriced));
  }
  return settledCost(ctx, settlement, match)?.usd;
}

function completionText(response: ChatCompletion): string {
  let text = '';
  for (const { message } of response.choices) {
    // Typed as a string, but a provider may answer with an array of parts, which passes through.
    const content: unknown = message.content;
    if (typeof content === 'string') text += content;
    else if (Array.isArray(content)) for (const part of content) if (typeof part === 'object' && part !== null && 'text' in part) text += String(part.text);
    if (message.refusal) text += message.refusal;
    for (const call of message.tool_calls ?? []) text += call.function.name + call.function.arguments;
  }
  return text;
}
