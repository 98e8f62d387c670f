import { vi, afterEach, describe, expect, it } from 'vitest';
import { RateLimitedError } from './rate-limited-error.js';
import { arrivals, ask, closeAll, harness, T0, track } from './test-harness.js';

afterEach(closeAll);

describe('rateLimit: requests per window', () => {
  it('lets 100 a minute through and makes the 101st wait until the window has room, then sends it', async () => {
    const { llm, upstream, admitted } = await harness({ rpm: 100 });
    const calls = Array.from({ length: 101 }, (_, i) => track(llm.complete(ask(`r${i}`))));

    // The burst (10% of the limit) goes at once; the rest is spread evenly.
    await upstream.waitForRequests(10);
    expect(admitted).toHaveLength(10);
    await vi.advanceTimersByTimeAsync(60_666);
    expect(admitted).toHaveLength(100);
    expect(calls[100]?.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    expect(admitted).toHaveLength(101);
    // The 101st goes 60 667 ms in: 91 steps of 60 000 / 90 ms after the burst.
    expect(admitted[100]).toEqual({ at: 60_667, text: 'r100' });
    await Promise.all(calls.map((call) => call.promise));
    expect(upstream.requests).toHaveLength(101);

    // No 60 s window ever held more than 100.
    const times = admitted.map((entry) => entry.at);
    for (const start of times) expect(times.filter((at) => at >= start && at < start + 60_000).length).toBeLessThanOrEqual(100);
  });

  it('counts in limit-wait’s queued the requests waiting, not those admitted at the same moment', async () => {
    const { llm, upstream, events, admitted } = await harness({ requests: { limit: 100, windowMs: 60_000, burst: 8 } });
    const calls = Array.from({ length: 16 }, (_, i) => llm.complete(ask(`r${i}`)));
    await upstream.waitForRequests(8);
    expect(admitted.map((entry) => entry.text)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    // The 9th is the first that really waits: it is alone in the queue.
    const waits = events.filter((event) => event.name === 'limit-wait');
    expect(waits[0]).toMatchObject({ limit: 'requests', queued: 1 });
    expect(waits.map((event) => event.queued)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await vi.advanceTimersByTimeAsync(60_000);
    await Promise.all(calls);
    expect(upstream.requests).toHaveLength(16);
  });

  it('admits waiters in arrival order', async () => {
    const { llm, upstream } = await harness({ requests: { limit: 3, windowMs: 1_000, burst: 1 } });
    const calls = ['a', 'b', 'c', 'd', 'e'].map((text) => llm.complete(ask(text)));
    await vi.advanceTimersByTimeAsync(3_000);
    await Promise.all(calls);
    expect(arrivals(upstream)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('fails at once in reject mode, saying which limit and when to come back', async () => {
    const { llm, upstream, events } = await harness({ requests: { limit: 10, windowMs: 60_000, burst: 2 }, mode: 'reject' });
    await llm.complete(ask('1'));
    await llm.complete(ask('2'));
    const refused = llm.complete(ask('3'));
    await expect(refused).rejects.toBeInstanceOf(RateLimitedError);
    await expect(refused).rejects.toMatchObject({ code: 'LIMIT_REJECTED', retryable: true, limit: 'requests', key: 'global', retryAfterMs: 7_500 });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-reject', limit: 'requests', retryAfterMs: 7_500 }));
    expect(upstream.requests).toHaveLength(2);

    await vi.advanceTimersByTimeAsync(7_500);
    await expect(llm.complete(ask('4'))).resolves.toMatchObject({ object: 'chat.completion' });
  });
});

describe('rateLimit: tokens per window', () => {
  const usageFor = (text: string) =>
    text.startsWith('heavy') ? { prompt_tokens: 300, completion_tokens: 100 } : { prompt_tokens: 10, completion_tokens: 5 };

  it('reserves prompt plus output cap, then corrects the reservation to the usage the upstream reported', async () => {
    // 1000 a minute, burst 400: 600 refilled a minute, 10 tokens a second.
    const { llm, upstream, events } = await harness(
      { tokens: { limit: 1_000, burst: 400 }, countTokens: () => 200 },
      { reply: (body) => ({ usage: usageFor(String(body.messages.at(-1)?.content)) }) },
    );
    const first = await llm.run(ask('light 1', { max_tokens: 100 }));
    expect(first.state.ratelimit).toEqual({ key: 'global', waitedMs: 0, reservedTokens: 300 });
    // 300 reserved, 15 used: without the correction this would have to wait.
    const second = await llm.run(ask('light 2', { max_tokens: 100 }));
    expect(second.state.ratelimit?.waitedMs).toBe(0);
    // 300 reserved, 400 used: the 100 above the reservation are charged too, leaving the bucket at −30.
    await llm.complete(ask('heavy', { max_tokens: 100 }));
    expect(events).toEqual([]);

    const fourth = track(llm.run(ask('light 3', { max_tokens: 100 })));
    await vi.advanceTimersByTimeAsync(0);
    expect(events).toEqual([expect.objectContaining({ name: 'limit-wait', limit: 'tokens', waitMs: 33_000, queued: 1 })]);
    await vi.advanceTimersByTimeAsync(32_999);
    expect(upstream.requests).toHaveLength(3);
    await vi.advanceTimersByTimeAsync(1);
    const ctx = await fourth.promise;
    expect(ctx.state.ratelimit).toEqual({ key: 'global', waitedMs: 33_000, reservedTokens: 300 });
  });

  it('holds a stream’s reservation until the stream ends, then corrects it to the stream’s usage', async () => {
    const { llm, upstream, until } = await harness(
      { tokens: { limit: 1_000, burst: 400 }, countTokens: () => 200 },
      { reply: (body) => ({ content: 'one two three', usage: usageFor(String(body.messages.at(-1)?.content)) }) },
    );
    const iterator = llm.stream(ask('stream', { max_tokens: 100 }))[Symbol.asyncIterator]();
    await iterator.next();
    // 300 of 400 are held while the stream is open: the next 300 must wait.
    const waiting = track(llm.complete(ask('after', { max_tokens: 100 })));
    await vi.advanceTimersByTimeAsync(0);
    expect(upstream.requests).toHaveLength(1);

    while (!(await iterator.next()).done);
    // The stream used 15: its refund lets the waiter go without any time passing.
    await until(() => waiting.state() !== 'pending');
    expect(waiting.state()).toBe('resolved');
    expect(upstream.requests).toHaveLength(2);
  });

  it('rejects at once a reservation the window can never hold, and waits for quiet for one above the burst', async () => {
    const { llm, upstream, admitted } = await harness({ tokens: { limit: 1_000, burst: 100 }, countTokens: () => 0 });
    await expect(llm.complete(ask('huge', { max_tokens: 1_001 }))).rejects.toMatchObject({
      code: 'LIMIT_REJECTED',
      limit: 'tokens',
      retryable: false,
      message: expect.stringMatching(/1001 tokens can never fit 1000 tokens per 60000 ms/),
    });
    expect(upstream.requests).toHaveLength(0);

    // 400 > burst 100: admitted once the bucket has sat full for (400 − 100) / 900 a minute = 20 s.
    const big = llm.complete(ask('big', { max_tokens: 400 }));
    await vi.advanceTimersByTimeAsync(20_000);
    await big;
    expect(admitted).toEqual([{ at: 20_000, text: 'big' }]);
  });

  it('defaults the reservation to the shared prompt count, else core’s estimate, plus 1024 output tokens', async () => {
    const { llm } = await harness({ tpm: 200_000 });
    const ctx = await llm.run(ask('Hello there', { n: 2 }));
    // estimateTokens: ceil(11 / 4) + 1 × 4 + 3 = 10; 1024 for each of the 2 choices.
    expect(ctx.state.ratelimit?.reservedTokens).toBe(10 + 2 * 1024);
  });
});

describe('rateLimit: concurrency', () => {
  it('caps requests in flight, holding each slot until its slow answer arrives', async () => {
    const { llm, upstream, until, admitted, events } = await harness({ concurrency: 2 });
    upstream.enqueue({ kind: 'delay', latencyMs: 1_000 }, { kind: 'delay', latencyMs: 1_000 }, { kind: 'delay', latencyMs: 1_000 });
    const calls = ['a', 'b'].map((text) => track(llm.complete(ask(text))));
    await upstream.waitForRequests(2);
    expect(events).toEqual([]);
    calls.push(...['c', 'd', 'e'].map((text) => track(llm.complete(ask(text)))));
    expect(events).toEqual(
      [1, 2, 3].map((queued) => expect.objectContaining({ name: 'limit-wait', key: 'global', limit: 'concurrency', waitMs: 0, queued })),
    );
    await vi.advanceTimersByTimeAsync(999);
    expect(upstream.requests).toHaveLength(2);

    await vi.advanceTimersByTimeAsync(1);
    await upstream.waitForRequests(4);
    // c is delayed too and d answers at once, so e takes d's slot.
    await until(() => upstream.requests.length === 5);
    expect(calls.filter((call) => call.state() === 'resolved').length).toBeGreaterThanOrEqual(2);
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(calls.map((call) => call.promise));
    // c and d pass the limiter in order at the same instant; their sockets may race to the mock.
    expect(admitted.map((entry) => entry.text)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(admitted.map((entry) => entry.at)).toEqual([0, 0, 1_000, 1_000, 1_000]);
  });

  it('frees the slot whatever the end: error, abort, cancelled stream, cut stream', async () => {
    const { llm, upstream } = await harness({ concurrency: 1 });
    upstream.enqueue({ kind: 'status', status: 500 });
    await expect(llm.complete(ask('error'))).rejects.toMatchObject({ code: 'SERVER_ERROR' });

    upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const hung = llm.complete(ask('aborted'), { signal: controller.signal });
    await upstream.waitForRequests(2);
    controller.abort();
    await expect(hung).rejects.toMatchObject({ code: 'ABORTED' });

    for await (const _chunk of llm.stream(ask('cancelled stream'))) break;

    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const cut = async () => {
      for await (const _chunk of llm.stream(ask('cut stream')));
    };
    await expect(cut()).rejects.toMatchObject({ code: 'STREAM_CUT' });

    upstream.enqueue({ kind: 'reset' });
    await expect(llm.complete(ask('reset'))).rejects.toMatchObject({ code: 'CONNECTION' });

    // With one slot, any leak would make this wait forever; no time passes.
    await expect(llm.complete(ask('after'))).resolves.toMatchObject({ object: 'chat.completion' });
    expect(upstream.requests).toHaveLength(6);
  });
});

describe('rateLimit: leaving the queue', () => {
  it('rejects at once when the wait would pass maxWaitMs, and when the queue is full', async () => {
    const { llm, upstream, events } = await harness({ requests: { limit: 91, burst: 1 }, maxWaitMs: 500, maxQueue: 1 });
    await llm.complete(ask('first'));
    // 90 refilled a minute: the next slot is 667 ms away, more than maxWaitMs.
    await expect(llm.complete(ask('too late'))).rejects.toMatchObject({
      code: 'LIMIT_REJECTED',
      limit: 'requests',
      retryAfterMs: 667,
      message: expect.stringMatching(/maxWaitMs/),
    });
    await vi.advanceTimersByTimeAsync(400);
    const queued = llm.complete(ask('queued'));
    await expect(llm.complete(ask('overflow'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'queue' });
    await vi.advanceTimersByTimeAsync(267);
    await queued;
    expect(arrivals(upstream)).toEqual(['first', 'queued']);
    expect(events.filter((event) => event.name === 'limit-reject').map((event) => event.limit)).toEqual(['requests', 'queue']);
  });

  it('with maxQueue 0, sends what can go at once and refuses anything that would wait', async () => {
    const { llm, upstream } = await harness({ concurrency: 1, maxQueue: 0 });
    upstream.enqueue({ kind: 'delay', latencyMs: 1_000 });
    const first = llm.complete(ask('first'));
    await upstream.waitForRequests(1);
    await expect(llm.complete(ask('second'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'queue' });
    await vi.advanceTimersByTimeAsync(1_000);
    await first;
    await llm.complete(ask('third'));
    expect(arrivals(upstream)).toEqual(['first', 'third']);
  });

  it('gives up a concurrency wait after maxWaitMs', async () => {
    const { llm, upstream } = await harness({ concurrency: 1, maxWaitMs: 500 });
    upstream.enqueue({ kind: 'delay', latencyMs: 1_000 });
    const slow = llm.complete(ask('slow'));
    await upstream.waitForRequests(1);
    const waiting = track(llm.complete(ask('waiting')));
    await vi.advanceTimersByTimeAsync(499);
    expect(waiting.state()).toBe('pending');
    await vi.advanceTimersByTimeAsync(1);
    await expect(waiting.promise).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'concurrency' });
    await vi.advanceTimersByTimeAsync(500);
    await slow;
    expect(upstream.requests).toHaveLength(1);
  });

  it('lets an aborted waiter leave at once, and the others keep their turn', async () => {
    const { llm, upstream } = await harness({ requests: { limit: 2, windowMs: 1_000, burst: 1 } });
    await llm.complete(ask('a'));
    const controller = new AbortController();
    const aborted = llm.complete(ask('b'), { signal: controller.signal });
    const next = llm.complete(ask('c'));
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await vi.advanceTimersByTimeAsync(1_000);
    await next;
    expect(arrivals(upstream)).toEqual(['a', 'c']);
  });

  it('turns away at once a waiter whose deadline comes before its turn', async () => {
    const { llm, upstream, events } = await harness({ requests: { limit: 2, windowMs: 1_000, burst: 1 } });
    await llm.complete(ask('a'));
    // Its turn is 1 000 ms away; its deadline 500.
    await expect(llm.complete(ask('b'), { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'LIMIT_REJECTED',
      limit: 'requests',
      retryAfterMs: 1_000,
      message: expect.stringMatching(/deadline/),
    });
    expect(events).toEqual([expect.objectContaining({ name: 'limit-reject', limit: 'requests', retryAfterMs: 1_000 })]);
    expect(arrivals(upstream)).toEqual(['a']);
  });

  it('drops a waiter for a slot when its deadline passes, and the queue goes on', async () => {
    const { llm, upstream } = await harness({ concurrency: 1 });
    upstream.enqueue({ kind: 'delay', latencyMs: 2_000 });
    const slow = llm.complete(ask('slow'));
    await upstream.waitForRequests(1);
    // Waiting for a slot has no known end, so it waits until its deadline passes.
    const late = track(llm.complete(ask('late'), { timeoutMs: 700 }));
    const patient = llm.complete(ask('patient'));
    await vi.advanceTimersByTimeAsync(700);
    await expect(late.promise).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await vi.advanceTimersByTimeAsync(1_300);
    await Promise.all([slow, patient]);
    expect(arrivals(upstream)).toEqual(['slow', 'patient']);
  });
});

describe('rateLimit: keys', () => {
  it('keeps a bucket per tenant: one tenant waiting does not hold up another', async () => {
    const { llm, upstream, admitted } = await harness({ requests: { limit: 2, windowMs: 1_000, burst: 1 }, key: { tag: 'tenant' } });
    await llm.complete(ask('acme 1'), { tags: { tenant: 'acme' } });
    const acme = llm.run(ask('acme 2'), { tags: { tenant: 'acme' } });
    const globex = await llm.run(ask('globex 1'), { tags: { tenant: 'globex' } });
    expect(globex.state.ratelimit).toEqual({ key: 'tenant:globex', waitedMs: 0, reservedTokens: 0 });
    await vi.advanceTimersByTimeAsync(1_000);
    expect((await acme).state.ratelimit).toMatchObject({ key: 'tenant:acme', waitedMs: 1_000 });
    expect(admitted.map((entry) => entry.text)).toEqual(['acme 1', 'globex 1', 'acme 2']);
    expect(upstream.requests).toHaveLength(3);
  });

  it('keys per model, or by a function of the call', async () => {
    const byModel = await harness({ requests: { limit: 2, windowMs: 1_000, burst: 1 }, key: 'model', mode: 'reject' });
    await byModel.llm.complete(ask('x', { model: 'a' }));
    await byModel.llm.complete(ask('x', { model: 'b' }));
    await expect(byModel.llm.complete(ask('x', { model: 'a' }))).rejects.toMatchObject({ key: 'model:a' });

    const byFunction = await harness({ concurrency: 5, key: (ctx) => `feature:${ctx.tags.feature}` });
    const ctx = await byFunction.llm.run(ask('x'), { tags: { feature: 'search' } });
    expect(ctx.state.ratelimit?.key).toBe('feature:search');
  });
});

describe('rateLimit: cooperative pause', () => {
  it('pauses the key on a 429 with Retry-After: queued requests reach the upstream only when it ends', async () => {
    const { llm, upstream, events, admitted } = await harness({ concurrency: 1 });
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '2' } });
    const first = llm.complete(ask('first'));
    const queued = ['second', 'third'].map((text) => track(llm.complete(ask(text))));
    await expect(first).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 2_000 });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', key: 'global', untilMs: T0 + 2_000, pauseMs: 2_000, reason: 'retry-after' }));

    await vi.advanceTimersByTimeAsync(1_999);
    expect(upstream.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await Promise.all(queued.map((call) => call.promise));
    expect(arrivals(upstream)).toEqual(['first', 'second', 'third']);
    expect(admitted.map((entry) => entry.at)).toEqual([0, 2_000, 2_000]);
  });

  it('turns away waiters that cannot outlast the pause', async () => {
    const { llm, upstream } = await harness({ concurrency: 1, maxWaitMs: 1_000 });
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '5' } });
    const first = llm.complete(ask('first'));
    const queued = llm.complete(ask('second'));
    await expect(first).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(queued).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'pause', retryAfterMs: 5_000 });
  });

  it('with paceFromHeaders, pauses until the reset when a response says nothing remains', async () => {
    const { llm, upstream, events } = await harness({ concurrency: 1, paceFromHeaders: true });
    upstream.enqueue({
      kind: 'status',
      status: 503,
      headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m30s', 'x-ratelimit-remaining-tokens': '5000', 'x-ratelimit-reset-tokens': '20ms' },
    });
    await expect(llm.complete(ask('first'))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', pauseMs: 90_000, reason: 'headers' }));
    const next = track(llm.complete(ask('second')));
    await vi.advanceTimersByTimeAsync(89_999);
    expect(upstream.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await next.promise;
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('rateLimit: pacing from a successful response', () => {
  it('with paceFromHeaders, a 200 saying nothing remains pauses the key until its reset', async () => {
    const headers = { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2s' };
    const { llm, upstream, events } = await harness({ concurrency: 1, paceFromHeaders: true }, { headers });
    await expect(llm.complete(ask('first'))).resolves.toBeDefined();
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', pauseMs: 2_000, reason: 'headers' }));
    const next = track(llm.complete(ask('second')));
    await vi.advanceTimersByTimeAsync(1_999);
    expect(upstream.requests).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    await next.promise;
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('rateLimit: options', () => {
  it.each([
    [{}, 'rateLimit', /at least one of/],
    [{ rpm: 0 }, 'rateLimit.rpm', /./],
    [{ rpm: 1.5 }, 'rateLimit.rpm', /./],
    [{ requests: { limit: 10, burst: 10 } }, 'rateLimit.requests.burst', /below the limit/],
    [{ tokens: { limit: 100, windowMs: -1 } }, 'rateLimit.tokens.windowMs', /./],
    [{ rpm: 10, requests: { limit: 10 } }, 'rateLimit.requests', /not both/],
    [{ concurrency: 0 }, 'rateLimit.concurrency', /./],
    [{ rpm: 10, mode: 'later' }, 'rateLimit.mode', /./],
    [{ rpm: 10, key: { tag: '' } }, 'rateLimit.key.tag', /./],
    [{ rpm: 10, key: 'user' }, 'rateLimit.key', /./],
    [{ rpm: 10, maxWaitMs: -5 }, 'rateLimit.maxWaitMs', /./],
    [{ rpm: 10, countTokens: 42 }, 'rateLimit.countTokens', /function/],
    [{ rmp: 10 }, 'rateLimit', /rmp/],
  ])('rejects %j naming %s', async (options, field, message) => {
    const { rateLimit } = await import('./rate-limit.js');
    expect(() => rateLimit(options as never)).toThrow(expect.objectContaining({ code: 'VALIDATION', field, message: expect.stringMatching(message) }));
  });
});
