/**
 * Transports that answer from memory, for the benchmarks that time
 * middleware in process: no network, no parsing, only the pipeline left.
 *
 * @module
 */
import type { ChatCompletion, Transport } from '@sluice/core';
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
 * as they do over a network.
 */
export function memoryTransport(completion: ChatCompletion, { overlap = false }: { overlap?: boolean } = {}): Transport {
  const usage = completion.usage ?? undefined;
  if (!overlap) {
    return {
      name: 'memory',
      origin: 'memory://bench',
      async send(ctx) {
        ctx.response = completion;
        ctx.usage = usage;
      },
    };
  }
  return {
    name: 'memory-overlapping',
    origin: 'memory://bench',
    async send(ctx) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      ctx.response = completion;
      ctx.usage = usage;
    },
  };
}
