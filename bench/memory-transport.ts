/**
 * Transports that answer from memory, for the benchmarks that time
 * middleware in process: no network, no parsing, only the pipeline left.
 *
 * @module
 */
import type { ChatCompletion, ChatCompletionChunk, CompletionContext, Transport } from '@sluice/core';
import { reply, request } from './clients.js';

/** A completion of the benchmarks' request, `content` (default: the shared reply) and 30 + 25 tokens of usage. */
export function memoryCompletion(content: string = reply): ChatCompletion {
  return {
    id: 'chatcmpl-memory',
    object: 'chat.completion',
    created: 0,
    model: request.model,
    choices: [{ index: 0, message: { role: 'assistant', content, refusal: null }, finish_reason: 'stop', logprobs: null }],
    usage: { prompt_tokens: 30, completion_tokens: 25, total_tokens: 55 },
  };
}

/**
 * Answers every call with `completion` (and its usage) from memory: at
 * once, or with `overlap` one event-loop turn later, so that calls overlap
 * as they do over a network. A streamed call gets the same answer as
 * chunks: a role chunk, one chunk a word of its content, a finish chunk,
 * each a new object as a transport parses them, and the usage at the end.
 */
export function memoryTransport(completion: ChatCompletion, { overlap = false }: { overlap?: boolean } = {}): Transport {
  const usage = completion.usage ?? undefined;
  const words = (completion.choices[0]?.message.content ?? '').split(' ');
  const chunk = (delta: { role?: 'assistant'; content?: string }, finish: 'stop' | null): ChatCompletionChunk => ({
    id: completion.id,
    object: 'chat.completion.chunk',
    created: completion.created,
    model: completion.model,
    choices: [{ index: 0, delta, finish_reason: finish, logprobs: null }],
  });
  async function* chunks(ctx: CompletionContext): AsyncGenerator<ChatCompletionChunk> {
    yield chunk({ role: 'assistant', content: '' }, null);
    for (const word of words) yield chunk({ content: `${word} ` }, null);
    yield chunk({}, 'stop');
    ctx.usage = usage;
  }
  const answer = (ctx: CompletionContext) => {
    if (ctx.stream) {
      ctx.chunks = chunks(ctx);
      return;
    }
    ctx.response = completion;
    ctx.usage = usage;
  };
  if (!overlap) {
    return {
      name: 'memory',
      origin: 'memory://bench',
      async send(ctx) {
        answer(ctx);
      },
    };
  }
  return {
    name: 'memory-overlapping',
    origin: 'memory://bench',
    async send(ctx) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      answer(ctx);
    },
  };
}
