import { contentText, estimatePromptTokens, type ChatRequestBody } from './chat-request-body.js';
import type { MockUpstreamOptions } from './mock-upstream-options.js';
import type { RecordedRequest } from './recorded-request.js';
import type { MockReply, MockToolCall, MockUsage } from './mock-reply.js';

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

/** A reply that is not a {@link MockReply}: what the mock says, rather than a TypeError from deep inside it. */
export class ReplyShapeError extends TypeError {}

/**
 * What is wrong with a reply's fields, if anything (not `usage`'s values: a
 * test may want nonsense there, as the `usage` fault sends): the field
 * (`.toolCalls[0].name`, or '' for the reply itself) and why.
 *
 * @param reply - the reply given or returned
 */
export function replyIssue(reply: unknown): { field: string; why: string } | undefined {
  const kind = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value);
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) return { field: '', why: `must be a string, a MockReply object or null, got ${kind(reply)}` };
  const { content, toolCalls, finishReason, usage } = reply as Record<string, unknown>;
  if (content !== undefined && content !== null && typeof content !== 'string') return { field: '.content', why: `must be a string or null, got ${kind(content)}` };
  if (finishReason !== undefined && typeof finishReason !== 'string') return { field: '.finishReason', why: `must be a string, got ${kind(finishReason)}` };
  if (usage !== undefined && (typeof usage !== 'object' || usage === null)) return { field: '.usage', why: `must be an object, got ${kind(usage)}` };
  if (toolCalls === undefined) return undefined;
  if (!Array.isArray(toolCalls)) return { field: '.toolCalls', why: `must be an array of { name, arguments? }, got ${kind(toolCalls)}` };
  for (let index = 0; index < toolCalls.length; index++) {
    const call: unknown = toolCalls[index];
    const field = `.toolCalls[${index}]`;
    if (typeof call !== 'object' || call === null) return { field, why: `must be { name, arguments? }, got ${kind(call)}` };
    const { name, id, arguments: args } = call as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') return { field: `${field}.name`, why: 'must be a non-empty string' };
    if (id !== undefined && typeof id !== 'string') return { field: `${field}.id`, why: `must be a string, got ${kind(id)}` };
    if (args !== undefined && typeof args !== 'string' && (typeof args !== 'object' || args === null)) {
      return { field: `${field}.arguments`, why: `must be a JSON string or an object, got ${kind(args)}` };
    }
  }
  return undefined;
}

/**
 * Throws when a reply's fields are not a {@link MockReply}'s.
 *
 * @param reply - the reply given or returned
 * @param where - how the message names it (`reply`, `the reply function's result`)
 * @throws ReplyShapeError naming the bad field
 */
export function checkReply(reply: unknown, where: string): void {
  const issue = replyIssue(reply);
  if (issue) throw new ReplyShapeError(`mockUpstream: ${where}${issue.field} ${issue.why}`);
}
