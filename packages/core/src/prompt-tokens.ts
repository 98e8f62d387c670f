import type { PromptTokens } from './augmentable.js';
import type { CompletionContext } from './context.js';
import type { ChatCompletionRequest, ChatMessage } from './schemas.js';

/**
 * The prompt token count some middleware already made for the request as
 * it is now, or `undefined` when none was made or the request changed since.
 *
 * @example
 * ```ts
 * const tokens = promptTokens(ctx) ?? estimateTokens(ctx.request);
 * ```
 */
export function promptTokens(ctx: CompletionContext): PromptTokens | undefined {
  const tokens = ctx.state.tokens;
  return tokens && tokens.messages === ctx.request.messages && tokens.model === ctx.request.model ? tokens : undefined;
}

/**
 * A cheap upper-leaning estimate of a request's prompt tokens (about four
 * characters a token, plus the per-message overhead), for middleware that
 * need a number without a tokenizer. `@sluice/context` counts exactly.
 */
export function estimateTokens(request: Pick<ChatCompletionRequest, 'messages' | 'tools'>): number {
  let chars = 0;
  for (const message of request.messages) {
    const { content } = message;
    if (typeof content === 'string') chars += content.length;
    else if (Array.isArray(content)) for (const part of content) chars += 'text' in part ? String(part.text).length : 256;
    if (message.role === 'assistant' && message.tool_calls) {
      for (const call of message.tool_calls) {
        chars += call.type === 'custom' ? call.custom.name.length + call.custom.input.length : call.function.name.length + call.function.arguments.length;
      }
    }
  }
  if (request.tools) chars += JSON.stringify(request.tools).length;
  return Math.ceil(chars / 4) + request.messages.length * 4 + 3;
}
