import { afterEach, describe, expect, it, vi } from 'vitest';
import { compose } from './compose.js';
import type { CompletionContext, Middleware, Settlement } from './context.js';
import { z } from 'zod';
import { parseOptions } from './validate.js';
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { createPipeline } from './pipeline.js';
import { openAICompatible } from './open-ai-compatible.js';
import { apiKey, ask, collect, setup } from './test-helpers.js';

const upstreams: MockUpstream[] = [];

afterEach(async () => {
  vi.useRealTimers();
  for (const upstream of upstreams.splice(0)) await upstream.close();
});

/** A pipeline with nothing in it and nothing listening: a stream's chunks are the transport's own reader. */
async function bare() {
  const upstream = await mockUpstream();
  upstreams.push(upstream);
  const transport = openAICompatible({ baseUrl: upstream.url, apiKey });
  return { upstream, transport, llm: createPipeline({ transport }) };
}

describe('pipeline.close()', () => {
  it('refuses later calls with a final CLOSED error that reaches no middleware', async () => {
    const { llm, upstream } = await setup();
    const seen = vi.fn(async (_ctx: CompletionContext, next: () => Promise<void>) => next());
    llm.use(seen);
    await llm.close();
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'CLOSED', final: true, retryable: false, upstreamFault: false });
    const chunks = llm.stream({ ...ask(), stream: true });
    await expect(chunks[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'CLOSED' });
    expect(seen).not.toHaveBeenCalled();
    expect(upstream.requests).toHaveLength(0);
  });

  it('lets a call in flight finish within the grace period', async () => {
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'delay', latencyMs: 50 });
    const call = llm.complete(ask());
    await vi.waitFor(() => expect(upstream.requests).toHaveLength(1));
    const closing = llm.close({ graceMs: 5_000 });
    await expect(call).resolves.toMatchObject({ object: 'chat.completion' });
    await expect(closing).resolves.toBeUndefined();
  });

  it('aborts calls still in flight after the grace period with CLOSED, and never hangs', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'hang' });
    const call = llm.complete(ask());
    const failed = expect(call).rejects.toMatchObject({ code: 'CLOSED', final: true });
    await vi.waitFor(() => expect(upstream.requests).toHaveLength(1));
    const closing = llm.close({ graceMs: 1_000 });
    await vi.advanceTimersByTimeAsync(1_000);
    await failed;
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(closing).resolves.toBeUndefined();
  });

  it('settles a stream cut by close() for its listeners', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 10_000 });
    const settlements: Settlement[] = [];
    llm.use(async function listen(ctx, next) {
      ctx.onSettled((settlement) => {
        settlements.push(settlement);
      });
      await next();
    });
    const ctx = await llm.run({ ...ask(), stream: true });
    const reading = (async () => {
      for await (const _ of ctx.chunks ?? []) void _;
    })();
    const failed = expect(reading).rejects.toMatchObject({ code: 'CLOSED' });
    const closing = llm.close({ graceMs: 100 });
    await vi.advanceTimersByTimeAsync(100);
    await failed;
    await vi.advanceTimersByTimeAsync(2_000);
    await closing;
    expect(settlements).toMatchObject([{ outcome: 'error', accepted: true, error: { code: 'CLOSED' } }]);
  });
});

describe('pipeline.close() and a stream nobody watches (the transport\'s own reader)', () => {
  it('gives it the grace period: the reader reads to the end, then close() resolves', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await bare();
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 500 });
    const ctx = await llm.run({ ...ask('one two three four five six'), stream: true });
    expect(ctx.chunks?.constructor.name).toBe('EventReader');
    const chunks = ctx.chunks as AsyncIterable<unknown>;
    let read = 0;
    let ended = false;
    let closing: Promise<void> | undefined;
    let closed = false;
    const reading = (async () => {
      for await (const _ of chunks) if (++read === 1) closing = llm.close({ graceMs: 60_000 }).then(() => void (closed = true));
      ended = true;
    })();
    await vi.advanceTimersByTimeAsync(1_500);
    expect(closing).toBeDefined();
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(20_000);
    await reading;
    await closing;
    expect(ended).toBe(true);
    expect(read).toBeGreaterThan(3);
    expect(closed).toBe(true);
  });

  it('aborts it with CLOSED after the grace period when its reader stopped reading', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await bare();
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 100 });
    const ctx = await llm.run({ ...ask('one two three four five six'), stream: true });
    const iterator = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const first = iterator.next();
    await vi.advanceTimersByTimeAsync(100);
    await first;
    const closing = llm.close({ graceMs: 1_000 });
    // The reader holds its chunk past the grace period, while the rest arrives.
    await vi.advanceTimersByTimeAsync(1_000);
    await expect(iterator.next()).rejects.toMatchObject({ code: 'CLOSED' });
    await vi.advanceTimersByTimeAsync(2_000);
    await expect(closing).resolves.toBeUndefined();
  });

  it('lets close() resolve after the grace period when it was never read, and a later read gets CLOSED', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await bare();
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 100 });
    const ctx = await llm.run({ ...ask(), stream: true });
    let closed = false;
    const closing = llm.close({ graceMs: 1_000 }).then(() => void (closed = true));
    await vi.advanceTimersByTimeAsync(999);
    expect(closed).toBe(false);
    await vi.advanceTimersByTimeAsync(3_000);
    await closing;
    await expect((ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]().next()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe("pipeline.close() and a middleware's own stream around the transport's, nobody watching", () => {
  /** An in-house middleware that passes every chunk through an async generator, which says nothing of its end. */
  const passThrough = async (ctx: CompletionContext, next: () => Promise<void>) => {
    await next();
    const source = ctx.chunks;
    if (source) {
      ctx.chunks = (async function* () {
        for await (const chunk of source) yield chunk;
      })();
    }
  };

  it('gives it the grace period while the upstream stream under it is read, then aborts it with CLOSED', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    for (const api of ['stream', 'run'] as const) {
      const { llm, upstream } = await bare();
      llm.use(passThrough);
      upstream.enqueue({ kind: 'delay', chunkDelayMs: 100 });
      const request = ask('one two three four five six');
      const iterator = api === 'stream' ? llm.stream(request)[Symbol.asyncIterator]() : ((await llm.run({ ...request, stream: true })).chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      const first = iterator.next();
      await vi.advanceTimersByTimeAsync(100);
      await first;
      let closed = false;
      const closing = llm.close({ graceMs: 1_000 }).then(() => void (closed = true));
      await vi.advanceTimersByTimeAsync(999);
      // Before, the call counted as over at hand-over: close() went straight to closing the transport.
      expect(closed).toBe(false);
      await vi.advanceTimersByTimeAsync(1);
      await expect(iterator.next()).rejects.toMatchObject({ code: 'CLOSED' });
      await vi.advanceTimersByTimeAsync(2_000);
      await closing;
      expect(closed).toBe(true);
    }
  });

  it('lets go of the call once the upstream stream under it has ended: close() then has nothing to wait for', async () => {
    const { llm } = await bare();
    llm.use(passThrough);
    expect((await collect(llm.stream(ask('one two three')))).length).toBeGreaterThan(2);
    // A call left in flight would hold close() for its grace, past this test's timeout.
    await llm.close({ graceMs: 600_000 });
  });
});

describe("openAICompatible's destroy()", () => {
  it('reaches a connection that close() is still waiting on', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream, transport } = await bare();
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 500 });
    const ctx = await llm.run({ ...ask('one two three four five six'), stream: true });
    const iterator = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    const first = iterator.next();
    await vi.advanceTimersByTimeAsync(500);
    await first;
    const closing = transport.close?.();
    await transport.destroy?.();
    const rest = (async () => {
      for (;;) if ((await iterator.next()).done) return 'read to the end';
    })();
    const settled = expect(rest).rejects.toMatchObject({ code: 'STREAM_CUT' });
    await vi.advanceTimersByTimeAsync(10_000);
    await settled;
    await closing;
  });
});

describe('a transport shared with a pipeline that was closed', () => {
  it('fails the other pipeline\'s calls with a final CLOSED at once: nothing retries against it or counts it as an outage', async () => {
    const upstream = await mockUpstream();
    upstreams.push(upstream);
    const transport = openAICompatible({ baseUrl: upstream.url, apiKey });
    const first = createPipeline({ transport });
    const second = createPipeline({ transport });
    await first.complete(ask());
    await first.close();
    const error = await second.complete(ask()).catch((caught: unknown) => caught);
    expect(error).toMatchObject({ code: 'CLOSED', final: true, retryable: false, upstreamFault: false, httpStatus: 503 });
    expect((error as Error).message).toMatch(/^the transport is closed \(UND_ERR_(CLOSED|DESTROYED)\): a pipeline using it was closed/);
    expect(upstream.requests).toHaveLength(1);
    await second.close();
  });
});

describe('middleware factories used uncalled', () => {
  function timing(options: { label?: string } = {}): Middleware {
    const { label = 'timing' } = parseOptions(z.strictObject({ label: z.string().optional() }), options, 'timing');
    return async function timing(ctx, next) {
      void label;
      await next();
    };
  }

  it('says to call a factory that validates its options', async () => {
    const { llm } = await setup();
    llm.use(timing as unknown as Middleware);
    await expect(llm.complete(ask())).rejects.toMatchObject({
      code: 'VALIDATION',
      message: expect.stringContaining('use(timing()), not use(timing)'),
    });
  });

  it('says to call a factory that returns the middleware without validating', async () => {
    const { llm } = await setup();
    const logger = () => async (_ctx: CompletionContext, next: () => Promise<void>) => next();
    llm.use(logger as unknown as Middleware);
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'VALIDATION', message: expect.stringContaining('use(logger())') });
  });
});

describe('compose', () => {
  it('runs without a final next', async () => {
    const order: string[] = [];
    const run = compose([
      async (_ctx, next) => {
        order.push('a');
        await next();
      },
      async (_ctx, next) => {
        order.push('b');
        await next();
      },
    ]);
    await run({} as CompletionContext);
    expect(order).toEqual(['a', 'b']);
  });
});

describe('Settlement.durationMs', () => {
  it('is never negative, when the wall clock steps back during the call', async () => {
    const { testPipeline } = await import('@sluice/testing/kit');
    const { llm, clock, upstream } = await testPipeline({ transport: { apiKey } });
    const durations: number[] = [];
    llm.events.on('response', (event) => durations.push(event.durationMs));
    llm.use(async function listen(ctx, next) {
      ctx.onSettled((settlement) => void durations.push(settlement.durationMs));
      await next();
    });
    for (const stream of [false, true]) {
      upstream.enqueue({ kind: 'delay', latencyMs: 1_000 });
      const call: Promise<unknown> = stream ? collect(llm.stream(ask())) : llm.complete(ask());
      await upstream.waitForRequests(stream ? 2 : 1);
      clock.jump(-3_600_000);
      await clock.run(call);
    }
    expect(durations).toHaveLength(4);
    // Before, each was about -3 599 000 ms: a latency histogram's mean went negative.
    expect(durations.every((ms) => ms === 0)).toBe(true);
  });
});

describe('Settlement.accepted', () => {
  it('is false for an attempt the upstream refused and true for one it answered', async () => {
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'status', status: 503 });
    const accepted: boolean[] = [];
    llm.use(async function listen(ctx, next) {
      ctx.onSettled((settlement) => {
        accepted.push(settlement.accepted);
      });
      await next();
    });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await llm.complete(ask());
    expect(accepted).toEqual([false, true]);
  });
});

describe('a stream its caller never reads', () => {
  it('settles at the call deadline, giving back what it holds, and a late read throws the deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
    let held = 0;
    llm.use(async function slot(ctx, next) {
      held++;
      ctx.onSettled(() => {
        held--;
      });
      await next();
    });
    const ctx = await llm.run({ ...ask(), stream: true }, { timeoutMs: 1_000 });
    expect(held).toBe(1);
    await vi.advanceTimersByTimeAsync(1_000);
    await vi.waitFor(() => expect(held).toBe(0));
    const reader = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await expect(reader.next()).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
  });
});
