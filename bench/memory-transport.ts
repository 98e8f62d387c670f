/**
 * Transports that answer from memory, for the benchmarks that time
 * middleware in process: no network, no parsing, only the pipeline left.
 *
 * @module
 */
import type { ChatCompletion, Transport } from '@sluice/core';

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
