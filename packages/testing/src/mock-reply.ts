import { contentText, estimatePromptTokens, type ChatRequestBody } from './chat-request-body.js';
import type { MockUpstreamOptions } from './mock-upstream-options.js';
import type { RecordedRequest } from './mock-upstream.js';

/**
 * A function call the mock assistant makes.
 *
 * @example
 * ```ts
 * const call: MockToolCall = { name: 'get_weather', arguments: { city: 'Paris' } };
 * ```
 */
export interface MockToolCall {
  /** The call id; `call_mock_<request>_<index>` when omitted. */
  id?: string;
  /** The function's name. */
  name: string;
  /** The arguments: a JSON string as sent, or an object to serialise; `{}` when omitted. */
  arguments?: string | Readonly<Record<string, unknown>>;
}

/**
 * Token usage as the API reports it.
 *
 * @example
 * ```ts
 * const usage: Partial<MockUsage> = { prompt_tokens: 3_000, completion_tokens: 800 };
 * ```
 */
export interface MockUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}

/**
 * What a successful completion says, when a plain string is not enough.
 *
 * @example
 * ```ts
 * const reply: MockReply = {
 *   toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }],
 *   usage: { prompt_tokens: 1_000 },
 * };
 * ```
 */
export interface MockReply {
  /**
   * The assistant's text. When omitted: `null` if there are tool calls,
   * else the default echo of the last user message.
   */
  content?: string | null;
  /** Function calls; they make `finish_reason` `'tool_calls'` by default. */
  toolCalls?: readonly MockToolCall[];
  /** `finish_reason`; `'tool_calls'` with tool calls, else `'stop'`, when omitted. */
  finishReason?: string;
  /** Overrides the estimated usage field by field; `total_tokens` follows the other two unless given. */
  usage?: Partial<MockUsage>;
}

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
