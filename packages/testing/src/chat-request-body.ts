import { errorBody, type OpenAIErrorBody } from './openai-error.js';

/**
 * The parts of a chat-completions request body the mock reads; every other
 * field is kept and visible to a `reply` function.
 *
 * @example
 * ```ts
 * const reply = (body: ChatRequestBody) => `You said ${body.messages.length} messages to ${body.model}`;
 * ```
 */
export interface ChatRequestBody {
  model: string;
  messages: Array<{ role: string; content?: unknown; [field: string]: unknown }>;
  stream?: boolean | null;
  stream_options?: { include_usage?: boolean | null } | null;
  [field: string]: unknown;
}

/**
 * What {@link parseChatRequest} makes of a raw body; internal.
 *
 * @example
 * ```ts
 * const parsed: ParsedChatRequest = parseChatRequest(raw);
 * if (!parsed.ok) exchange.send(400, parsed.error);
 * ```
 */
export type ParsedChatRequest = { ok: true; body: ChatRequestBody } | { ok: false; error: OpenAIErrorBody };

const invalid = (message: string, param: string | null): ParsedChatRequest => ({
  ok: false,
  error: errorBody({ status: 400, message, param, code: null }),
});

/**
 * Checks a raw body the way the real API does, just enough to answer 400
 * where it would; internal.
 *
 * @param raw - the request body as text
 * @example
 * ```ts
 * parseChatRequest('{"model":"m","messages":[]}'); // { ok: true, body }
 * ```
 */
export function parseChatRequest(raw: string): ParsedChatRequest {
  let body: unknown;
  try {
    body = JSON.parse(raw);
  } catch {
    return invalid(
      "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your HTTP library correctly.)",
      null,
    );
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return invalid('The request body must be a JSON object.', null);
  }
  const record = body as Record<string, unknown>;
  if (typeof record['model'] !== 'string') return invalid("'model' is a required property", 'model');
  const { messages } = record;
  if (!Array.isArray(messages) || !messages.every((m) => typeof m === 'object' && m !== null)) {
    return invalid("'messages' must be an array of message objects", 'messages');
  }
  return { ok: true, body: record as ChatRequestBody };
}

/**
 * The text of a message's content, whether a string or an array of parts; internal.
 *
 * @param content - a message's `content`
 * @example
 * ```ts
 * contentText([{ type: 'text', text: 'hi' }]); // 'hi'
 * ```
 */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((part: unknown) => {
      const text = typeof part === 'object' && part !== null ? (part as { text?: unknown }).text : undefined;
      return typeof text === 'string' ? text : '';
    })
    .join('');
}

/**
 * A deterministic prompt-token estimate: a token per 4 characters of all
 * message contents, plus 3 per message; internal.
 *
 * @param body - the request
 * @example
 * ```ts
 * estimatePromptTokens({ model: 'm', messages: [{ role: 'user', content: 'abcd' }] }); // 4
 * ```
 */
export function estimatePromptTokens(body: ChatRequestBody): number {
  const chars = body.messages.reduce((sum, message) => sum + contentText(message.content).length, 0);
  return Math.ceil(chars / 4) + 3 * body.messages.length;
}
