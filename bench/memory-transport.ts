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
      // It answers at once, and its stream never waits: nothing outlasts an abort.
      honoursAbort: true,
      async send(ctx) {
        answer(ctx);
      },
    };
  }
  return {
    name: 'memory-overlapping',
    origin: 'memory://bench',
    // It answers one turn later, and its stream never waits: nothing outlasts an abort for long.
    honoursAbort: true,
    async send(ctx) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      answer(ctx);
    },
  };
}

/** The part of undici's dispatch handler interface that core's transport implements. */
interface DispatchHandler {
  onConnect(abort: (reason: Error) => void): void;
  onHeaders(status: number, headers: Buffer[], resume: () => void, statusText: string): boolean;
  onData(part: Buffer): boolean;
  onComplete(trailers: Buffer[]): void;
}

/**
 * An undici dispatcher that answers from memory, one event-loop turn
 * later, with the bytes an upstream would send: `completion` as a JSON
 * body, or as an SSE stream of a role chunk, one chunk a word of its
 * content, a finish chunk, a usage chunk and `[DONE]`, in four reads.
 * Given to `openAICompatible({ dispatcher })`, it runs core's real
 * transport (parsing, checks, the SSE reader) with no socket and no
 * upstream process: the steadiest figure of what a middleware costs on
 * the path real calls take.
 */
export function memoryDispatcher(completion: ChatCompletion): { dispatch(options: { headers?: unknown }, handler: DispatchHandler): boolean } {
  const { id, created, model } = completion;
  const chunk = (delta: object, finish: string | null, usage: object | null = null) =>
    `data: ${JSON.stringify({ id, object: 'chat.completion.chunk', created, model, choices: usage ? [] : [{ index: 0, delta, logprobs: null, finish_reason: finish }], usage })}\n\n`;
  const words = (completion.choices[0]?.message.content ?? '').split(' ');
  const events = [chunk({ role: 'assistant', content: '' }, null), ...words.map((word) => chunk({ content: `${word} ` }, null)), chunk({}, 'stop')];
  const sse = Buffer.from(`${events.join('')}${chunk({}, null, completion.usage ?? {})}data: [DONE]\n\n`);
  const json = Buffer.from(JSON.stringify(completion));
  const header = (pairs: string[]) => pairs.map((text) => Buffer.from(text));
  const sseHead = header(['content-type', 'text/event-stream']);
  const jsonHead = header(['content-type', 'application/json', 'content-length', String(json.length)]);
  const quarter = Math.ceil(sse.length / 4);
  return {
    dispatch(options, handler) {
      const stream = (options.headers as Record<string, string> | undefined)?.accept === 'text/event-stream';
      setImmediate(() => {
        handler.onConnect(() => {});
        handler.onHeaders(200, stream ? sseHead : jsonHead, () => {}, 'OK');
        // Copies, as a socket's reads are: nothing the transport keeps points into a shared buffer.
        if (!stream) handler.onData(Buffer.from(json));
        else for (let at = 0; at < sse.length; at += quarter) handler.onData(Buffer.from(sse.subarray(at, at + quarter)));
        handler.onComplete([]);
      });
      return true;
    },
  };
}
