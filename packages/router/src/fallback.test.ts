import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { spendLedger, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';
import { type MockUpstream } from '@sluice/testing';
import { chat, collect } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { router } from './router.js';
import { clock, closeDeployments, pipeline, start } from './test-deployments.js';

afterEach(closeDeployments);

describe('router: fallback', () => {
  it('moves traffic to the fallback while the primary is down and back once its circuit closes', async () => {
    const { deployments, mocks } = await start([
      { id: 'primary', model: 'gpt-4.1' },
      { id: 'backup', model: 'deepseek-v3.2' },
    ]);
    const { llm, events } = pipeline({
      deployments,
      middleware: () => [breaker({ failures: 3, openMs: 30_000 })],
      fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] },
    });
    const primary = mocks.primary as MockUpstream;
    const backup = mocks.backup as MockUpstream;
    primary.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));

    const answeredBy: string[] = [];
    for (let i = 0; i < 10; i++) {
      const ctx = await clock.run(llm.run(chat(`call ${i}`, { model: 'gpt-4.1' })));
      answeredBy.push(ctx.state.router?.deployment ?? '?');
    }
    expect(answeredBy).toEqual(Array(10).fill('backup'));
    // Three failures opened the circuit; after that the primary is passed over without a request.
    expect(primary.requests).toHaveLength(3);
    expect(backup.requests).toHaveLength(10);
    expect(events.names()).toContain('circuit-open');
    expect(events.names()).toContain('route-skip');

    await clock.advanceAsync(30_000);
    const back: string[] = [];
    for (let i = 0; i < 5; i++) {
      const ctx = await clock.run(llm.run(chat(`later ${i}`, { model: 'gpt-4.1' })));
      back.push(ctx.state.router?.deployment ?? '?');
    }
    expect(back).toEqual(Array(5).fill('primary'));
    expect(events.names()).toContain('circuit-close');
    expect(backup.requests).toHaveLength(10);
  });

  it('records every hop in ctx.state.router and emits route and route-fallback', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'deepseek-v3.2' },
    ]);
    const { llm, events } = pipeline({ deployments, fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] } });
    mocks.a?.enqueue({ kind: 'status', status: 502 });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(ctx.response?.choices[0]?.message.content).toMatch(/Echo/);
    expect(ctx.state.router).toMatchObject({
      deployment: 'b',
      hedged: false,
      hops: [
        { deployment: 'a', outcome: 'failed', code: 'SERVER_ERROR' },
        { deployment: 'b', outcome: 'answered', model: 'deepseek-v3.2' },
      ],
    });
    expect(events.names().filter((name) => name.startsWith('route'))).toEqual(['route', 'route-fallback', 'route']);
    expect(mocks.b?.requests[0]?.body).toMatchObject({ model: 'deepseek-v3.2' });
  });

  it('cools a deployment that answered 429 without Retry-After, and sends it nothing until the cooldown ends', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', cooldownMs: 5_000 });
    mocks.a?.enqueue({ kind: 'status', status: 429 });
    const first = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(first.state.router).toMatchObject({ deployment: 'b', hops: [{ deployment: 'a', reason: 'route', code: 'RATE_LIMITED' }, { deployment: 'b', reason: 'fallback' }] });
    const second = await clock.run(llm.run(chat('again', { model: 'gpt-4.1' })));
    expect(second.state.router).toMatchObject({ deployment: 'b', hops: [{ deployment: 'a', outcome: 'skipped', code: 'cooling' }, { deployment: 'b', outcome: 'answered' }] });
    expect(mocks.a?.requests).toHaveLength(1);
    expect(events.names()).toContain('route-skip');
    await clock.advanceAsync(5_000);
    const later = await clock.run(llm.run(chat('later', { model: 'gpt-4.1' })));
    expect(later.state.router?.deployment).toBe('a');
  });

  it('ends a cooldown that began before the wall clock stepped back, rather than keep it for the step', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'cost', cooldownMs: 5_000 });
    mocks.a?.enqueue({ kind: 'status', status: 429 });
    expect((await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })))).state.router?.deployment).toBe('b');
    // The shared clock goes back where it was, for the tests after this one.
    clock.jump(-3_600_000);
    try {
      // Before, deployment a was passed over for the hour of the step.
      const after = await clock.run(llm.run(chat('after the step', { model: 'gpt-4.1' })));
      expect(after.state.router?.deployment).toBe('a');
      expect(mocks.a?.requests).toHaveLength(2);
    } finally {
      clock.jump(3_600_000);
    }
  });

  it('keeps one rate-limit window per deployment: one deployment\'s 429 pauses only its own', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    // The natural way to write it: a limiter per deployment, the same limits for each.
    const { llm } = pipeline({ deployments, strategy: 'cost', middleware: () => [rateLimit({ rpm: 1_000, mode: 'reject' })] });
    mocks.a?.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '30' } });
    const first = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(first.state.router?.deployment).toBe('b');
    // Before, the limiters' records were named by their limits alone: a's 429 paused b's window too,
    // every deployment refused, and the call failed with NO_DEPLOYMENT.
    const second = await clock.run(llm.run(chat('again', { model: 'gpt-4.1' })));
    expect(second.state.router?.deployment).toBe('b');
    expect(mocks.b?.requests).toHaveLength(2);
    expect(mocks.a?.requests).toHaveLength(1);
  });

  it('passes a deployment over for at most maxCooldownMs, whatever its 429 asked', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm } = pipeline({ deployments, strategy: 'cost', maxCooldownMs: 30_000 });
    // A day: before, deployment a was passed over for all of it.
    mocks.a?.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '86400' } });
    const first = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(first.state.router?.deployment).toBe('b');
    await clock.advanceAsync(29_999);
    const cooling = await clock.run(llm.run(chat('again', { model: 'gpt-4.1' })));
    expect(cooling.state.router).toMatchObject({ deployment: 'b', hops: [{ deployment: 'a', outcome: 'skipped', code: 'cooling' }, { deployment: 'b' }] });
    await clock.advanceAsync(1);
    const later = await clock.run(llm.run(chat('later', { model: 'gpt-4.1' })));
    expect(later.state.router?.deployment).toBe('a');
    expect(mocks.a?.requests).toHaveLength(2);
    expect(() => router({ deployments, maxCooldownMs: -1 })).toThrow(expect.objectContaining({ field: 'router.maxCooldownMs' }));
  });

  it('stops at maxHops and records the deployments it passed over', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
      { id: 'c', model: 'deepseek-v3.2' },
    ]);
    const { llm, events } = pipeline({ deployments, strategy: 'cost', maxHops: 1, fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] } });
    mocks.a?.enqueue({ kind: 'status', status: 503 });
    const outer = llm.run(chat('Hi', { model: 'gpt-4.1' }));
    await expect(clock.run(outer)).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(mocks.b?.requests).toHaveLength(0);
    expect(mocks.c?.requests).toHaveLength(0);
    expect(events.all.filter(({ name }) => name === 'route-skip').map(({ payload }) => payload)).toMatchObject([
      { deployment: 'b', reason: 'hop-limit' },
      { deployment: 'c', reason: 'hop-limit' },
    ]);
  });

  it('never falls back on a 400 or a 401', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const { llm } = pipeline({ deployments });
    for (const status of [400, 401]) {
      mocks.a?.enqueue({ kind: 'status', status });
      mocks.b?.enqueue({ kind: 'status', status });
      const code = status === 400 ? 'BAD_REQUEST' : 'AUTHENTICATION';
      await expect(clock.run(llm.complete(chat('Hi', { model: 'gpt-4.1' })))).rejects.toMatchObject({ code });
      expect((mocks.a?.requests.length ?? 0) + (mocks.b?.requests.length ?? 0)).toBe(1);
      mocks.a?.reset();
      mocks.b?.reset();
    }
  });

  it('falls back only on what the caller chose', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'deepseek-v3.2' },
    ]);
    const { llm } = pipeline({ deployments, fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] }, fallbackOn: { rateLimit: false } });
    mocks.a?.enqueue({ kind: 'status', status: 429 });
    await expect(clock.run(llm.complete(chat('Hi', { model: 'gpt-4.1' })))).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(mocks.b?.requests).toHaveLength(0);
  });

  it('sends a prompt too long for one window to the next model that fits', async () => {
    const { deployments, mocks } = await start([
      { id: 'deepseek', model: 'deepseek-v3.2' },
      { id: 'claude', model: 'claude-sonnet-4.5' },
      { id: 'gemini', model: 'gemini-2.5-flash' },
    ]);
    const { llm, events } = pipeline({ deployments, fallbacks: { 'deepseek-v3.2': ['claude-sonnet-4.5', 'gemini-2.5-flash'] } });
    // About 255k tokens: over deepseek's 128k and claude's 200k windows, inside gemini's 1M.
    const long = 'lorem ipsum '.repeat(85_000);
    const ctx = await clock.run(llm.run(chat(long, { model: 'deepseek-v3.2' })));
    expect(ctx.state.router?.deployment).toBe('gemini');
    expect(mocks.deepseek?.requests).toHaveLength(0);
    expect(mocks.claude?.requests).toHaveLength(0);
    expect(events.all.filter(({ name }) => name === 'route-skip').map(({ payload }) => payload)).toMatchObject([
      { deployment: 'deepseek', reason: 'window' },
      { deployment: 'claude', reason: 'window' },
    ]);
  });

  it("falls back to a larger window when the upstream says the prompt is too long", async () => {
    const { deployments, mocks } = await start([
      { id: 'small', model: 'deepseek-v3.2' },
      { id: 'large', model: 'gpt-4.1' },
    ]);
    const { llm } = pipeline({ deployments, fallbacks: { 'deepseek-v3.2': ['gpt-4.1'] } });
    mocks.small?.enqueue({ kind: 'status', status: 400, code: 'context_length_exceeded' });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'deepseek-v3.2' })));
    expect(ctx.state.router).toMatchObject({ deployment: 'large', hops: [{ code: 'CONTEXT_LENGTH_EXCEEDED' }, { outcome: 'answered' }] });
  });

  it('sends a content-filter refusal where configured, and keeps it as the answer when nothing else answers', async () => {
    const { deployments, mocks } = await start([
      { id: 'strict', model: 'gpt-4.1' },
      { id: 'lenient', model: 'deepseek-v3.2' },
    ]);
    const { llm } = pipeline({ deployments, contentFilterFallbacks: { 'gpt-4.1': ['deepseek-v3.2'] } });
    mocks.strict?.enqueue({ kind: 'ok', reply: { content: '', finishReason: 'content_filter' } });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(ctx.state.router).toMatchObject({ deployment: 'lenient', hops: [{ deployment: 'strict', code: 'CONTENT_FILTERED' }, { outcome: 'answered' }] });

    mocks.strict?.enqueue({ kind: 'ok', reply: { content: '', finishReason: 'content_filter' } });
    mocks.lenient?.enqueue({ kind: 'status', status: 503 });
    const refused = await clock.run(llm.complete(chat('Hi', { model: 'gpt-4.1' })));
    expect(refused.choices[0]?.finish_reason).toBe('content_filter');
  });

  it('falls back when a stream fails before its first chunk, never after it reached the caller', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'deepseek-v3.2' },
    ]);
    const { llm } = pipeline({ deployments, fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] } });
    mocks.a?.enqueue({ kind: 'reset' });
    const chunks = await clock.run(collect(llm.stream(chat('one two three', { model: 'gpt-4.1' }))));
    expect(chunks.length).toBeGreaterThan(1);
    expect(mocks.b?.requests).toHaveLength(1);

    mocks.a?.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 2 });
    await expect(clock.run(collect(llm.stream(chat('one two three', { model: 'gpt-4.1' }))))).rejects.toMatchObject({ code: 'STREAM_CUT' });
    expect(mocks.b?.requests).toHaveLength(1);
  });

  it('answers next()s asked at once in order through stream(), as when read one at a time', async () => {
    const { deployments, mocks } = await start([{ id: 'a', model: 'gpt-4.1', upstream: { chunkDelayMs: 5 } }]);
    const { llm } = pipeline({ deployments });
    const expected = await clock.run(collect(llm.stream(chat('one two three four five', { model: 'gpt-4.1' }))));
    expect(expected.length).toBeGreaterThan(3);
    // Each next() past the first goes straight to the deployment's stream, which answers them in turn.
    const reader = llm.stream(chat('one two three four five', { model: 'gpt-4.1' }))[Symbol.asyncIterator]();
    const first = await clock.run(reader.next());
    const rest = await clock.run(Promise.all(Array.from({ length: expected.length + 1 }, () => reader.next())));
    const deltas = [first, ...rest].filter((result) => !result.done).map((result) => result.value?.choices[0]?.delta);
    expect(deltas).toEqual(expected.map((chunk) => chunk.choices[0]?.delta));
    expect(rest.at(-1)?.done).toBe(true);
    expect(mocks.a?.requests).toHaveLength(2);
  });

  it('rejects a model no deployment serves', async () => {
    const { deployments } = await start([{ id: 'a', model: 'gpt-4.1' }]);
    const { llm } = pipeline({ deployments });
    await expect(clock.run(llm.complete(chat('Hi', { model: 'nope' })))).rejects.toMatchObject({ code: 'NO_DEPLOYMENT', final: true });
  });

  it('names the deployment when its middleware factory returns something other than an array of middleware', async () => {
    const { deployments, mocks } = await start([{ id: 'a', model: 'gpt-4.1' }]);
    const single = pipeline({ deployments, middleware: () => retry() as unknown as [] });
    await expect(clock.run(single.llm.complete(chat('Hi', { model: 'gpt-4.1' })))).rejects.toMatchObject({
      code: 'VALIDATION',
      field: 'router.middleware("a")',
      httpStatus: 500,
      message: expect.stringContaining('must return an array of middleware, got one middleware'),
    });
    const holed = pipeline({ deployments, middleware: () => [retry(), undefined] as unknown as [] });
    await expect(clock.run(holed.llm.complete(chat('Hi', { model: 'gpt-4.1' })))).rejects.toMatchObject({
      field: 'router.middleware("a").1',
      message: expect.stringContaining('must be a middleware function, got undefined'),
    });
    expect(mocks.a?.requests).toHaveLength(0);
  });

  it("never falls back once the caller's deadline passed, and leaves no call pending", async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1', upstream: { latencyMs: 5_000 } },
      { id: 'b', model: 'deepseek-v3.2' },
    ]);
    const { llm } = pipeline({ deployments, fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] } });
    await expect(clock.run(llm.complete(chat('Hi', { model: 'gpt-4.1' }), { timeoutMs: 1_000 }))).rejects.toMatchObject({
      code: 'DEADLINE_EXCEEDED',
    });
    expect(mocks.a?.requests).toHaveLength(1);
    expect(mocks.b?.requests).toHaveLength(0);
  });

  it('records the cost of every attempt in the ledger under its deployment', async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'gpt-4.1' },
    ]);
    const costs = trackCost({ ledger: spendLedger({ clock }) });
    const { llm } = pipeline({ deployments, middleware: () => [costs] });
    for (let i = 0; i < 4; i++) await clock.run(llm.complete(chat(`n${i}`, { model: 'gpt-4.1' })));
    mocks.a?.enqueue({ kind: 'cut', afterChunks: 2 });
    // A stream cut after its first chunk reached the caller is not moved, and is still costed.
    await expect(clock.run(collect(llm.stream(chat('one two three four', { model: 'gpt-4.1' }))))).rejects.toMatchObject({ code: 'STREAM_CUT' });
    const report = await costs.ledger.report({ by: { tag: 'deployment' }, until: clock.now() + 1 });
    expect(Object.fromEntries(report.rows.map((row) => [row.key, row.requests]))).toEqual({ a: 3, b: 2 });
  });

  it("falls back when a deployment's own retry gave up, judging by the last attempt's error", async () => {
    const { deployments, mocks } = await start([
      { id: 'a', model: 'gpt-4.1' },
      { id: 'b', model: 'deepseek-v3.2' },
    ]);
    const { llm } = pipeline({
      deployments,
      middleware: () => [retry({ attempts: 2, backoff: { baseMs: 10, maxMs: 10 } })],
      fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] },
    });
    mocks.a?.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    const ctx = await clock.run(llm.run(chat('Hi', { model: 'gpt-4.1' })));
    expect(ctx.state.router).toMatchObject({ deployment: 'b', hops: [{ deployment: 'a', code: 'RETRY_EXHAUSTED' }, { outcome: 'answered' }] });
    expect(mocks.a?.requests).toHaveLength(2);
  });
});

describe('router: close', () => {
  it("gives a routed stream nothing watches the outer pipeline's grace period", async () => {
    const { deployments } = await start([{ id: 'a', model: 'gpt-4.1', upstream: { chunkDelayMs: 500 } }]);
    const routed = router({ deployments });
    // No listener and no other middleware: the caller reads the router's own stream.
    const llm = createPipeline({ transport: routed.transport, clock }).use(routed);
    const read = async (graceMs: number) => {
      const ctx = await clock.run(llm.run(chat('one two three four five six', { model: 'gpt-4.1', stream: true })), { stepMs: 50 });
      const iterator = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
      await clock.run(iterator.next(), { stepMs: 50 });
      return { iterator, closing: llm.close({ graceMs }) };
    };
    const { iterator, closing } = await read(60_000);
    const closedAt = clock.now();
    let chunks = 1;
    // Well past the second the router's own deployments are given: the outer grace period is what counts.
    while (!(await clock.run(iterator.next(), { stepMs: 50 })).done) chunks++;
    expect(chunks).toBeGreaterThan(3);
    expect(clock.now() - closedAt).toBeGreaterThan(2_000);
    await clock.run(closing, { stepMs: 50 });
  });

  it('aborts a routed stream whose reader stopped with CLOSED after the grace period', async () => {
    const { deployments } = await start([{ id: 'a', model: 'gpt-4.1', upstream: { chunkDelayMs: 500 } }]);
    const routed = router({ deployments });
    const llm = createPipeline({ transport: routed.transport, clock }).use(routed);
    const ctx = await clock.run(llm.run(chat('one two three four five six', { model: 'gpt-4.1', stream: true })), { stepMs: 50 });
    const iterator = (ctx.chunks as AsyncIterable<unknown>)[Symbol.asyncIterator]();
    await clock.run(iterator.next(), { stepMs: 50 });
    let closed = false;
    const startedAt = clock.now();
    let closedAt = 0;
    const closing = llm.close({ graceMs: 2_000 }).then(() => {
      closed = true;
      closedAt = clock.now();
    });
    await clock.advanceAsync(1_500);
    expect(closed).toBe(false);
    await clock.run(closing, { stepMs: 50 });
    // Aborted at the end of the grace period, its deployment's call ends with it: no second wait inside.
    expect(closedAt - startedAt).toBeLessThan(2_500);
    await expect(iterator.next()).rejects.toMatchObject({ code: 'CLOSED' });
  });
});

describe('router: options', () => {
  it('names the bad field', () => {
    const transport = openAICompatible({ baseUrl: 'http://127.0.0.1:9/v1', apiKey: 'sk-test' });
    expect(() => router({ deployments: [] })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'router.deployments' }));
    expect(() => router({ deployments: [{ id: 'a', model: 'm', transport }, { id: 'a', model: 'n', transport }] })).toThrow(
      expect.objectContaining({ field: 'router.deployments.1.id' }),
    );
    expect(() => router({ deployments: [{ id: 'a', model: 'm', transport }], fallbacks: { m: ['nope'] } })).toThrow(
      expect.objectContaining({ field: 'router.fallbacks.m.0' }),
    );
    expect(() => router({ deployments: [{ id: 'a', model: 'm', transport }], fallbacks: { typo: ['m'] } })).toThrow(
      expect.objectContaining({ field: 'router.fallbacks.typo' }),
    );
    expect(() => router({ deployments: [{ id: 'a', model: 'm', transport }], contentFilterFallbacks: { typo: ['m'] } })).toThrow(
      expect.objectContaining({ field: 'router.contentFilterFallbacks.typo' }),
    );
    expect(() => router({ deployments: [{ id: 'a', model: 'm', transport }], hedge: { minMs: 500, maxMs: 100 } })).toThrow(
      expect.objectContaining({ field: 'router.hedge.minMs' }),
    );
    expect(() => router({ deployments: [{ id: 'a', model: 'm', transport }], hedge: { ratio: 2 } })).toThrow(
      expect.objectContaining({ field: 'router.hedge.ratio' }),
    );
  });
});
