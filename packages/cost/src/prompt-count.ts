import { countMessages, countTokens } from '@sluice/context';
import { type CompletionContext } from '@sluice/core';
import { type PromptTokens, promptTokens } from '@sluice/core/kit';

/**
 * The prompt's token count for the request as it is now: the one another
 * middleware already made (`ctx.state.tokens`), or a new one, stored there
 * so the limiter and the cost report reuse it; internal.
 *
 * @param ctx - the call
 * @example
 * ```ts
 * const { count, approximate } = promptCount(ctx);
 * ```
 */
export function promptCount(ctx: CompletionContext): PromptTokens {
  const made = promptTokens(ctx);
  if (made) return made;
  const { messages, model, tools } = ctx.request;
  const counted = countMessages(messages, model, tools ? { tools } : undefined);
  const tokens: PromptTokens = { count: counted.tokens, approximate: counted.approximate, messages, model };
  ctx.state.tokens = tokens;
  return tokens;
}

const streamed = new WeakMap<object, { text: string; model: string; tokens: number }>();

/**
 * Tokens of the text a stream delivered, counted once per call even when
 * both `trackCost` and `budget` need it; internal.
 *
 * @param ctx - the call
 * @param text - the streamed text (`settlement.streamedText`)
 * @example
 * ```ts
 * const output = streamedTokens(ctx, settlement.streamedText);
 * ```
 */
export function streamedTokens(ctx: CompletionContext, text: string): number {
  const model = ctx.request.model;
  const known = streamed.get(ctx);
  if (known && known.text === text && known.model === model) return known.tokens;
  const tokens = text === '' ? 0 : countTokens(text, model).tokens;
  streamed.set(ctx, { text, model, tokens });
  return tokens;
}
