import { manualClock } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import type { CompletionContext } from './context.js';
import { createPipeline } from './pipeline.js';
import type { ChatCompletionChunk } from './schemas.js';
import type { Transport } from './transport.js';

const request = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] };
const never = new Promise<never>(() => {});

const chunk = (content: string): ChatCompletionChunk => ({
  id: 'c', object: 'chat.completion.chunk', created: 1, model: 'm',
  choices: [{ index: 0, delta: { content }, finish_reason: null, logprobs: null }],
});

/** A stream that yields one chunk, then waits for good on the second, hearing no abort; it records a `return()`. */
function deafStream() {
  const seen = { returned: 0 };
  let reads = 0;
  const stream: AsyncIterableIterator<ChatCompletionChunk> = {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      return reads++ === 0 ? Promise.resolve({ done: false, value: chunk('a') }) : never;
    },
    return() {
      seen.returned++;
      return Promise.resolve({ done: true, value: undefined });
    },
  };
  return { stream, seen };
}

/** A transport that hears no abort: `send` resolves when `answer` does, if ever, setting what `answer` gives. */
function deafTransport(answer: (ctx: CompletionContext) => Promise<void>, honoursAbort?: boolean): Transport {
  return { name: 'deaf', origin: 'memory://deaf', send: answer, ...(honoursAbort === undefined ? {} : { honoursAbort }) };
}

describe('a transport that does not say it honours the abort', () => {
  it("ends a call whose send never settles at the call's deadline", async () => {
    const clock = manualClock();
    const llm = createPipeline({ transport: deafTransport(() => never), clock });
    const call = llm.complete(request, { timeoutMs: 1_000 });
    await expect(clock.run(call)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(clock.now() - clock.start).toBe(1_000);
  });

  it("ends a stream's read that never settles at the call's deadline, and tells the stream to stop", async () => {
    const clock = manualClock();
    const { stream, seen } = deafStream();
    const llm = createPipeline({
      transport: deafTransport(async (ctx) => {
        ctx.chunks = stream;
      }),
      clock,
    });
    const read: string[] = [];
    const reading = (async () => {
      for await (const part of llm.stream(request, { timeoutMs: 1_000 })) read.push(part.choices[0]?.delta.content ?? '');
    })();
    await expect(clock.run(reading)).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    expect(read).toEqual(['a']);
    expect(seen.returned).toBe(1);
  });

  it('tells a stream handed over after the abort to stop', async () => {
    const clock = manualClock();
    const { stream, seen } = deafStream();
    let answer!: () => void;
    const llm = createPipeline({
      transport: deafTransport(
        (ctx) =>
          new Promise<void>((resolve) => {
            answer = () => {
              ctx.chunks = stream;
              resolve();
            };
          }),
      ),
      clock,
    });
    const controller = new AbortController();
    const call = llm.stream(request, { signal: controller.signal })[Symbol.asyncIterator]().next();
    await clock.settle();
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    answer();
    await clock.settle();
    expect(seen.returned).toBe(1);
  });

  it("waits for the stream's own return() when its consumer breaks off, as without the guard", async () => {
    const clock = manualClock();
    let cleaned = false;
    const stream: AsyncIterableIterator<ChatCompletionChunk> = {
      [Symbol.asyncIterator]() {
        return this;
      },
      next: () => Promise.resolve({ done: false, value: chunk('a') }),
      async return() {
        await new Promise((resolve) => setImmediate(resolve));
        cleaned = true;
        return { done: true, value: undefined };
      },
    };
    const llm = createPipeline({
      transport: deafTransport(async (ctx) => {
        ctx.chunks = stream;
      }),
      clock,
    });
    for await (const _part of llm.stream(request)) break;
    expect(cleaned).toBe(true);
  });

  it("keeps an unwatched stream's call in flight until it ends, so close() waits for it, then ends it with CLOSED", async () => {
    for (const withDeadline of [false, true]) {
      const { stream, seen } = deafStream();
      const llm = createPipeline({
        transport: deafTransport(async (ctx) => {
          ctx.chunks = stream;
        }),
      });
      // Nothing watches the call: the caller reads the guard around the transport's stream.
      const reader = llm.stream(request, withDeadline ? { timeoutMs: 60_000 } : undefined)[Symbol.asyncIterator]();
      expect((await reader.next()).value?.choices[0]?.delta.content).toBe('a');
      const next = reader.next();
      let closed = false;
      const closing = llm.close({ graceMs: 0 }).then(() => (closed = true));
      // Before, the call counted as over at hand-over: close() resolved at once and the read waited for good.
      await expect(next).rejects.toMatchObject({ code: 'CLOSED' });
      await closing;
      expect(closed).toBe(true);
      expect(seen.returned).toBe(1);
    }
    // Read to its end, it lets go of its call: close() then has nothing to wait for.
    const llm = createPipeline({
      transport: deafTransport(async (ctx) => {
        ctx.chunks = (async function* () {
          yield chunk('a');
        })();
      }),
    });
    const reader = llm.stream(request)[Symbol.asyncIterator]();
    expect((await reader.next()).done).toBe(false);
    expect((await reader.next()).done).toBe(true);
    await llm.close({ graceMs: 60_000 });
  });

  it('is trusted, and not raced, once it says it honours the abort', async () => {
    const clock = manualClock();
    const llm = createPipeline({ transport: deafTransport(() => never, true), clock });
    let settled = false;
    void llm.complete(request, { timeoutMs: 1_000 }).finally(() => (settled = true)).catch(() => {});
    await clock.advanceAsync(5_000);
    expect(settled).toBe(false);
  });
});
