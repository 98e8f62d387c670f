import { contentText, estimatePromptTokens, type ChatRequestBody } from './chat-request-body.js';
import type { MockUpstreamOptions } from './mock-upstream-options.js';
import type { RecordedRequest } from './recorded-request.js';
import type { MockReply, MockToolCall, MockUsage } from './mock-reply.js';
import { checkReply } from './reply-shape.js';

/**
 * A reply ready to be serialised; internal.
 *
 * @example
 * ```ts
 * const reply: ResolvedReply = await resolveReply('Hi', body, request, 1);
 * ```
 */
export interface ResolvedReply {
  content: string | null;
  toolCalls: Array<{ id: string; type: 'function'; function: { name: string; arguments: string } }>;
  finishReason: string;
  usage: MockUsage;
}

/**
 * The default answer: `Echo: ` and the first 40 characters of the last user message; internal.
 *
 * @param body - the request
 * @example
 * ```ts
 * echoReply({ model: 'm', messages: [{ role: 'user', content: 'Hello' }] }); // 'Echo: Hello'
 * ```
 */
export function echoReply(body: ChatRequestBody): string {
  const lastUser = body.messages.findLast((message) => message.role === 'user');
  return `Echo: ${contentText(lastUser?.content).slice(0, 40)}`;
}

/**
 * Turns the `reply` option (or a scripted one) into the reply to send; internal.
 *
 * @param source - a string, a {@link MockReply}, a function returning either, or undefined for the echo
 * @param body - the parsed request
 * @param request - the recorded request, passed to a reply function
 * @param sequence - the request's number, used for deterministic tool-call ids
 * @throws whatever a reply function throws
 * @example
 * ```ts
 * const reply = await resolveReply('Hi', body, request, 1);
 * ```
 */
export async function resolveReply(
  source: MockUpstreamOptions['reply'],
  body: ChatRequestBody,
  request: RecordedRequest,
  sequence: number,
): Promise<ResolvedReply> {
  const produced = typeof source === 'function' ? await source(body, request) : source;
  const reply: MockReply = typeof produced === 'string' ? { content: produced } : (produced ?? {});
  checkReply(reply, typeof source === 'function' ? "the reply function's result" : 'reply');
  const toolCalls = (reply.toolCalls ?? []).map((call, index) => ({
    id: call.id ?? `call_mock_${sequence}_${index}`,
    type: 'function' as const,
    function: {
      name: call.name,
      arguments: typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments ?? {}),
    },
  }));
  const content = reply.content !== undefined ? reply.content : toolCalls.length > 0 ? null : echoReply(body);
  const completionChars =
    (content ?? '').length +
    toolCalls.reduce((sum, call) => sum + call.function.name.length + call.function.arguments.length, 0);
  const prompt = reply.usage?.prompt_tokens ?? estimatePromptTokens(body);
  const completion = reply.usage?.completion_tokens ?? Math.ceil(completionChars / 4);
  return {
    content,
    toolCalls,
    finishReason: reply.finishReason ?? (toolCalls.length > 0 ? 'tool_calls' : 'stop'),
    usage: {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: reply.usage?.total_tokens ?? prompt + completion,
      prompt_tokens_details: reply.usage?.prompt_tokens_details ?? { cached_tokens: 0 },
      completion_tokens_details: reply.usage?.completion_tokens_details ?? { reasoning_tokens: 0 },
    },
  };
}
