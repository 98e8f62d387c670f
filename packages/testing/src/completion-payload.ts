import type { ResolvedReply } from './resolve-reply.js';

/**
 * What every payload of one answer shares; internal.
 *
 * @example
 * ```ts
 * const meta: PayloadMeta = { id: 'chatcmpl-mock-1', created: 1_700_000_000, model: 'gpt-4.1' };
 * ```
 */
export interface PayloadMeta {
  id: string;
  created: number;
  model: string;
}

/**
 * The `chat.completion` object of a non-streamed answer; internal.
 *
 * @param meta - id, created and model
 * @param reply - what to say
 * @example
 * ```ts
 * completionPayload({ id: 'chatcmpl-mock-1', created: 0, model: 'm' }, reply);
 * ```
 */
export function completionPayload(meta: PayloadMeta, reply: ResolvedReply): object {
  const message: Record<string, unknown> = { role: 'assistant', content: reply.content, refusal: null };
  if (reply.toolCalls.length > 0) message['tool_calls'] = reply.toolCalls;
  return {
    id: meta.id,
    object: 'chat.completion',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: reply.finishReason }],
    usage: reply.usage,
  };
}

/**
 * Splits text into `pieces` slices of near-equal length, never inside a
 * surrogate pair; `pieces` undefined splits after each run of whitespace
 * (about one slice per word). Empty text gives no slices; internal.
 *
 * @param text - what to split
 * @param pieces - how many slices, or undefined for one per word
 * @example
 * ```ts
 * splitText('Echo: hello world', undefined); // ['Echo: ', 'hello ', 'world']
 * splitText('abcdef', 4); // ['a', 'bc', 'd', 'ef']
 * ```
 */
export function splitText(text: string, pieces: number | undefined): string[] {
  if (text === '') return [];
  if (pieces === undefined) return text.split(/(?<=\s)(?=\S)/u);
  const chars = Array.from(text);
  const count = Math.max(1, Math.min(Math.floor(pieces), chars.length));
  const slices: string[] = [];
  for (let i = 0; i < count; i++) {
    slices.push(chars.slice(Math.floor((i * chars.length) / count), Math.floor(((i + 1) * chars.length) / count)).join(''));
  }
  return slices;
}

/** How many fragments a streamed tool call's arguments come in. */
const ARGUMENT_FRAGMENTS = 3;

/**
 * The `chat.completion.chunk` objects of a streamed answer, in order: the
 * role delta, content deltas, tool-call deltas, the finish chunk and, when
 * `includeUsage`, a usage chunk with no choices; internal.
 *
 * @param meta - id, created and model
 * @param reply - what to say
 * @param pieces - the `chunks` option
 * @param includeUsage - the request's `stream_options.include_usage`
 * @example
 * ```ts
 * completionChunks(meta, reply, undefined, true).map((chunk) => `data: ${JSON.stringify(chunk)}\n\n`);
 * ```
 */
export function completionChunks(
  meta: PayloadMeta,
  reply: ResolvedReply,
  pieces: number | undefined,
  includeUsage: boolean,
): object[] {
  // With include_usage the API sends `usage: null` on every chunk but the last.
  const extra = includeUsage ? { usage: null } : {};
  const chunk = (delta: object, finishReason: string | null = null): object => ({
    id: meta.id,
    object: 'chat.completion.chunk',
    created: meta.created,
    model: meta.model,
    choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
    ...extra,
  });
  const chunks = [chunk({ role: 'assistant', content: '' })];
  for (const content of splitText(reply.content ?? '', pieces)) chunks.push(chunk({ content }));
  reply.toolCalls.forEach((call, index) => {
    chunks.push(
      chunk({
        tool_calls: [{ index, id: call.id, type: 'function', function: { name: call.function.name, arguments: '' } }],
      }),
    );
    for (const fragment of splitText(call.function.arguments, ARGUMENT_FRAGMENTS)) {
      chunks.push(chunk({ tool_calls: [{ index, function: { arguments: fragment } }] }));
    }
  });
  chunks.push(chunk({}, reply.finishReason));
  if (includeUsage) {
    chunks.push({ id: meta.id, object: 'chat.completion.chunk', created: meta.created, model: meta.model, choices: [], usage: reply.usage });
  }
  return chunks;
}
