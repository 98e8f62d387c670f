import { type Middleware, sleep, SluiceError } from '@sluice/core';
import { afterEach, describe, expect, it } from 'vitest';
import { chat } from './chat.js';
import { checkedStore } from './checked-store.js';
import { collect } from './collect.js';
import { drain } from './drain.js';
import { mockUpstream } from './mock-upstream.js';
import { closeTestPipelines, testPipeline } from './pipeline-harness.js';

afterEach(closeTestPipelines);

/** Tries once more after `delayMs` on the call's clock when the upstream fails retryably. */
const retryOnce = (delayMs: number): Middleware =>
  async function retryOnce(ctx, next) {
    try {
      await next();
    } catch (error: unknown) {
      if (!(error instanceof SluiceError) || !error.retryable) throw error;
      await sleep(delayMs, { clock: ctx.clock, signal: ctx.signal });
      await next();
    }
  };

describe('testPipeline', () => {
  it('talks to a mock upstream and records the attempts and events', async () => {
    const { llm, upstream, attempts, events } = await testPipeline();

    const reply = await llm.complete(chat('ping'));

    expect(reply.choices[0]?.message.content).toBe('Echo: ping');
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]?.headers['authorization']).toBe('Bearer sk-test');
    expect(attempts).toMatchObject([{ request: { model: 'gpt-4.1' }, outcome: 'success' }]);
    expect(events.names()).toEqual(['request', 'response']);
  });

  it('runs the call and the mock on the manual clock', async () => {
    const { llm, upstream, clock, attempts } = await testPipeline({ middleware: retryOnce(1_000) });
    upstream.enqueue({ kind: 'status', status: 503 });
    const start = clock.now();

    await clock.run(llm.complete(chat()));

    expect(attempts.map((attempt) => attempt.at - start)).toEqual([0, 1_000]);
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['error', 'success']);
    expect(upstream.requests.map((request) => request.at - start)).toEqual([0, 1_000]);
  });

  it('leaves a slow upstream waiting until the clock moves', async () => {
    const { llm, clock } = await testPipeline({ upstream: { latencyMs: 30_000 } });
    const call = llm.complete(chat());
    let settled = false;
    void call.finally(() => (settled = true));
    await clock.advanceAsync(29_000);
    expect(settled).toBe(false);
    await clock.advanceAsync(1_000);
    await expect(call).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('streams: drain keeps the text and the error of a cut stream, collect the chunks', async () => {
    const { llm, upstream } = await testPipeline();
    expect((await collect(llm.stream(chat('one two three', { stream: true })))).length).toBeGreaterThan(3);

    upstream.enqueue({ kind: 'cut', afterChunks: 3 });
    const drained = await drain(llm.stream(chat('one two three', { stream: true })));
    expect(drained.chunks).toHaveLength(3);
    expect(drained.text).toBe('Echo: one ');
    expect(drained.error).toMatchObject({ code: 'STREAM_CUT' });
  });

  it('closes without hanging while a call waits on the manual clock, ending it with CLOSED', async () => {
    const h = await testPipeline({ middleware: retryOnce(60_000) });
    h.upstream.enqueue({ kind: 'status', status: 503 });
    const call = h.llm.complete(chat());
    void call.catch(() => {});
    await h.clock.until(() => h.attempts[0]?.outcome === 'error' && h.clock.pending > 0);

    await h.close();

    await expect(call).rejects.toMatchObject({ code: 'CLOSED' });
    expect(h.upstream.requests).toHaveLength(1);
  });

  it('fails close() when a middleware wrote impure state to the default store', async () => {
    const sloppy: Middleware = async function sloppy(ctx, next) {
      await ctx.store.update<{ n: number }>('sloppy', (current) => ({ n: (current?.n ?? 0) + Math.random() })).catch(() => {});
      await next();
    };
    const h = await testPipeline({ middleware: sloppy });
    await h.llm.complete(chat());
    await expect(h.close()).rejects.toThrow(/"sloppy" is not pure/);
  });

  it('uses a given upstream and store, and leaves the upstream open', async () => {
    const upstream = await mockUpstream();
    const store = checkedStore();
    try {
      const h = await testPipeline({ upstream, store });
      expect(h.store).toBe(store);
      await h.llm.complete(chat());
      await h.close();
      await expect(fetch(`${upstream.url}/chat/completions`, { method: 'POST', body: JSON.stringify(chat()) })).resolves.toMatchObject({ status: 200 });
    } finally {
      await upstream.close();
    }
  });
});
