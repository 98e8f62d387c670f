import { setMaxListeners } from 'node:events';
import { type ChatCompletionRequest, memoryStore, type Middleware, type SluiceEvents, type Store } from '@sluice/core';
import { type MockUpstream, type MockUpstreamOptions } from '@sluice/testing';
import { chat, closeTestPipelines, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { LimitRejectedError } from './errors.js';
import type { RateLimitOptions } from './options.js';
import { rateLimit } from './rate-limit.js';
import type { WindowState } from './window-state.js';

afterEach(closeTestPipelines);

const limitEvents = ['limit-wait', 'limit-reject', 'limit-pause'] as const;
type LimitEvent = { name: (typeof limitEvents)[number] } & Record<string, unknown>;

/**
 * `rateLimit(options)` in a kit pipeline (manual clock, purity-checking
 * store, mock upstream on the same clock), with the limiter's events as one
 * flat list and what passed the limiter as `{ at, text }`, `at` counted from
 * the clock's start. Transport timeouts are out of the way: tests move the
 * clock across minutes while sockets work in real time.
 */
async function setup(options: RateLimitOptions, upstream: MockUpstreamOptions = {}, outer: Middleware[] = []) {
  const far = 1e9;
  const harness = await testPipeline({
    middleware: [...outer, rateLimit(options)],
    upstream,
    transport: { apiKey: 'sk-test', connectTimeoutMs: far, firstByteTimeoutMs: far, attemptTimeoutMs: far, idleTimeoutMs: far },
  });
  const events: LimitEvent[] = [];
  for (const name of limitEvents) harness.llm.events.on(name, (payload: SluiceEvents[typeof name]) => events.push({ name, ...payload }));
  const sent = () => harness.attempts.map((attempt) => ({ at: attempt.at - harness.clock.start, text: lastText(attempt.request) }));
  return { ...harness, events, sent };
}

const lastText = (request: ChatCompletionRequest): string => String(request.messages[request.messages.length - 1]?.content);

/** The last user message of what the upstream received, in arrival order. */
const arrivals = (upstream: MockUpstream): string[] => upstream.requests.map((request) => lastText(request.body as ChatCompletionRequest));

/** Remembers how a promise ended, without an unhandled rejection in the meantime. */
function track<T>(promise: Promise<T>): { promise: Promise<T>; state: () => 'pending' | 'resolved' | 'rejected' } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  return { promise, state: () => state };
}

/** The most timestamps in any window [t, t + W), t being one of them (sorted or not). */
function mostInAnyWindow(times: readonly number[], windowMs: number): number {
  const sorted = [...times].sort((a, b) => a - b);
  let most = 0;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j < sorted.length && (sorted[j] as number) < (sorted[i] as number) + windowMs) j++;
    most = Math.max(most, j - i);
  }
  return most;
}

describe('rateLimit: a stored window this version did not write', () => {
  it.each([
    ['a total of 1e308 over one entry', (now: number) => ({ at: now, requests: { total: 1e308, flat: [now, 1] }, tokens: { total: 0, flat: [] }, pausedUntil: 0 })],
    ['an entry dated 1e308', (now: number) => ({ at: now, requests: { total: 1, flat: [1e308, 1] }, tokens: { total: 0, flat: [] }, pausedUntil: 0 })],
    ['an amount that is not a number', (now: number) => ({ at: now, requests: { total: 1, flat: [now, 'x'] }, tokens: { total: 0, flat: [] }, pausedUntil: 0 })],
    ['a pause that is not a number', (now: number) => ({ at: now, requests: { total: 0, flat: [] }, tokens: { total: 0, flat: [] }, pausedUntil: 'later' })],
    ['a number', () => 2.5],
    ['a pause of 1e308 ms', (now: number) => ({ at: now, requests: { total: 0, flat: [] }, tokens: { total: 0, flat: [] }, pausedUntil: 1e308 })],
  ])('reads %s as an empty window, and writes its own over it', async (_label, corrupt) => {
    const store = memoryStore();
    const harness = await testPipeline({ middleware: [rateLimit({ requests: { limit: 3, windowMs: 60_000 } })], store });
    const key = 'sluice:ratelimit:r3/60000:global';
    await store.set(key, corrupt(harness.clock.now()));
    // Before, the first two refused every call on the key for good: "it would wait at least 60000 ms".
    const calls = Array.from({ length: 3 }, (_, i) => harness.llm.complete(chat(`c${i}`), { timeoutMs: 1_000 }));
    await Promise.all(calls);
    expect(harness.attempts).toHaveLength(3);
    const stored = await store.get<WindowState>(key);
    expect(stored?.requests).toEqual({ total: 3, flat: [harness.clock.now(), 3] });
  });
});

describe('rateLimit: on the memory store, whose admissions it does not await', () => {
  it('sends at once only what fits the window and the rest when it has room, each concurrency slot given back', async () => {
    const harness = await testPipeline({
      middleware: [rateLimit({ requests: { limit: 3, windowMs: 1_000 }, concurrency: 4 })],
      store: memoryStore(),
    });
    const { llm, clock } = harness;
    const calls = Array.from({ length: 5 }, (_, i) => llm.complete(chat(`c${i}`)));
    await clock.until(() => harness.attempts.length === 3);
    await clock.advanceAsync(999);
    expect(harness.attempts).toHaveLength(3);
    await clock.advanceAsync(1);
    await Promise.all(calls);
    expect(harness.attempts.map((attempt) => attempt.at - clock.start)).toEqual([0, 0, 0, 1_000, 1_000]);
    // Every slot came back (a slot kept would leave these waiting for good): the window admits three more.
    await clock.advanceAsync(1_000);
    const more = Array.from({ length: 3 }, (_, i) => llm.complete(chat(`d${i}`)));
    await Promise.all(more);
    expect(harness.attempts).toHaveLength(8);
  });
});

describe('rateLimit: on the memory store, booking into the record it made', () => {
  /**
   * Twelve bursts of five calls, 250 ms apart, each call with its own
   * max_tokens (the five reserve a little more than the 2 000 tokens a
   * second allowed, until their usage gives most of it back), on `store`:
   * when each was sent, stepping from timer to timer as the load test
   * below. Most admissions take the fast path, booking into the record.
   */
  async function load(store?: Store) {
    const harness = await testPipeline({
      middleware: [rateLimit({ requests: { limit: 30, windowMs: 1_000 }, tokens: { limit: 2_000, windowMs: 1_000 }, maxWaitMs: 600_000 })],
      ...(store ? { store } : {}),
    });
    const { llm, clock } = harness;
    let done = 0;
    const calls = Array.from({ length: 60 }, async (_, i) => {
      await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), Math.floor(i / 5) * 250));
      await llm.complete({ ...chat(`c${i}`), max_tokens: 150 + (i % 5) * 150 }, { timeoutMs: 600_000 });
      done++;
    });
    const waits: string[] = [];
    llm.events.on('limit-wait', ({ limit, waitMs, queued }) => waits.push(`${clock.now() - clock.start} ${limit} ${waitMs} ${queued}`));
    while (done < 60) {
      await clock.advanceAsync((clock.nextAt() ?? clock.now() + 1) - clock.now());
      await clock.until(() => done === harness.attempts.length);
    }
    await Promise.all(calls);
    const record = await harness.store.get<WindowState>('sluice:ratelimit:r30/1000,t2000/1000:global');
    return { sent: arrivals(harness.upstream), waits, record: JSON.stringify(record) };
  }

  it('sends every call when the purity-checked store does, each reservation booked and what usage left given back', async () => {
    const checked = await load();
    const inPlace = await load(memoryStore());
    expect(inPlace).toEqual(checked);
    // The tokens held the last of each burst back until the usage of the first gave some back.
    expect(inPlace.waits.filter((wait) => wait.includes(' tokens ')).length).toBeGreaterThanOrEqual(12);
    expect(inPlace.record).toMatch(/"tokens":\{"total":\d+,"flat":\[/);
  });

  it('leaves a record it did not make as it was, and books into its own copy', async () => {
    const store = memoryStore();
    const harness = await testPipeline({ middleware: [rateLimit({ requests: { limit: 10, windowMs: 60_000 } })], store });
    const key = 'sluice:ratelimit:r10/60000:global';
    const now = harness.clock.now();
    const written = { at: now, requests: { total: 2, flat: [now, 2] }, tokens: { total: 0, flat: [] as number[] }, pausedUntil: 0 };
    await store.set(key, written);
    const records: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      await harness.llm.complete(chat(`c${i}`));
      records.push(await store.get(key));
      await harness.clock.advanceAsync(10);
    }
    // The first call made a record of its own; the next two booked into it, with no copy.
    expect(records[0]).not.toBe(written);
    expect(records[1]).toBe(records[0]);
    expect(records[2]).toBe(records[0]);
    expect(written).toEqual({ at: now, requests: { total: 2, flat: [now, 2] }, tokens: { total: 0, flat: [] }, pausedUntil: 0 });
    expect((await store.get<WindowState>(key))?.requests).toEqual({ total: 5, flat: [now, 3, now + 10, 1, now + 20, 1] });
  });

  it('gives back unused tokens on a record written from outside mid-call without ever changing that record', async () => {
    const store = memoryStore();
    const key = 'sluice:ratelimit:r10/60000,t100000/60000:global';
    let written: WindowState | undefined;
    // Between this call's admission and its settlement, a record is set from outside (a reset tool, say).
    const overwrite: Middleware = async (ctx, next) => {
      const now = ctx.clock.now();
      written ??= { at: now, requests: { total: 1, flat: [now, 1] }, tokens: { total: 500, flat: [now, 500] }, pausedUntil: 0 };
      if (ctx.request.messages.length > 0 && lastText(ctx.request) === 'a') await store.set(key, written);
      await next();
    };
    const harness = await testPipeline({ middleware: [rateLimit({ requests: { limit: 10, windowMs: 60_000 }, tokens: { limit: 100_000, windowMs: 60_000 } }), overwrite], store });
    const snapshot = () => JSON.stringify(written);
    await harness.llm.complete(chat('a'));
    const before = snapshot();
    for (const text of ['b', 'c']) {
      await harness.clock.advanceAsync(10);
      await harness.llm.complete(chat(text));
    }
    expect(snapshot()).toBe(before);
    expect((await store.get<WindowState>(key))?.requests).toEqual({ total: 3, flat: [harness.clock.start, 1, harness.clock.start + 10, 1, harness.clock.start + 20, 1] });
  });

  it('counts the bookings of another limiter on the same memory store between its own', async () => {
    const store = memoryStore();
    const first = await testPipeline({ middleware: [rateLimit({ requests: { limit: 10, windowMs: 60_000 } })], store });
    const second = await testPipeline({ middleware: [rateLimit({ requests: { limit: 10, windowMs: 60_000 } })], store, clock: first.clock });
    const key = 'sluice:ratelimit:r10/60000:global';
    const start = first.clock.start;
    await first.llm.complete(chat('a'));
    await first.clock.advanceAsync(5);
    // The second limiter writes its own record over the first's: the first books into that one, not its own.
    await second.llm.complete(chat('b'));
    await first.clock.advanceAsync(5);
    await first.llm.complete(chat('c'));
    await first.llm.complete(chat('d'));
    expect((await store.get<WindowState>(key))?.requests).toEqual({ total: 4, flat: [start, 1, start + 5, 1, start + 10, 2] });
  });
});

describe('rateLimit: requests per window', () => {
  it('sends 100 of 150 calls at once against rpm 100, and the other 50 when the minute is up', async () => {
    const { llm, upstream, sent, clock } = await setup({ rpm: 100 });
    const calls = Array.from({ length: 150 }, (_, i) => track(llm.complete(chat(`r${i}`))));

    await upstream.waitForRequests(100);
    expect(sent()).toHaveLength(100);
    expect(sent().every((entry) => entry.at === 0)).toBe(true);
    await clock.advanceAsync(59_999);
    expect(upstream.requests).toHaveLength(100);
    expect(calls[100]?.state()).toBe('pending');
    await clock.advanceAsync(1);
    await upstream.waitForRequests(150);
    await Promise.all(calls.map((call) => call.promise));
    expect(sent().slice(100).every((entry) => entry.at === 60_000)).toBe(true);
    expect(arrivals(upstream)).toEqual(calls.map((_, i) => `r${i}`));
    expect(mostInAnyWindow(upstream.requests.map((request) => request.at), 60_000)).toBe(100);
  });

  it('sustains the limit under continuous load: about 1 000 in 10 minutes at rpm 100, never over 100 in a minute', async () => {
    const { llm, upstream, sent, clock } = await setup({ rpm: 100 });
    const controller = new AbortController();
    // Every caller watches this one signal.
    setMaxListeners(0, controller.signal);
    let done = 0;
    // 130 callers, arriving 450 ms apart, each calling again as soon as it has its answer.
    const callers = Array.from({ length: 130 }, async (_, i) => {
      await new Promise<void>((resolve) => clock.setTimeout(() => resolve(), i * 450));
      while (!controller.signal.aborted) {
        await llm.complete(chat(`c${i}`), { signal: controller.signal }).then(() => done++, () => {});
      }
    });
    // Step from timer to timer, letting the real HTTP of each admission finish before time moves on,
    // so the upstream sees each request at the clock time it was admitted.
    while (clock.now() < clock.start + 600_000) {
      await clock.advanceAsync((clock.nextAt() ?? Infinity) - clock.now());
      await clock.until(() => done === sent().length);
    }
    controller.abort();
    await Promise.all(callers);
    const times = upstream.requests.map((request) => request.at).filter((at) => at < clock.start + 600_000);
    // The first 100 go 0 to 44.55 s in; each later one exactly a window after the one whose place it takes.
    expect(times).toHaveLength(1_000);
    expect(mostInAnyWindow(times, 60_000)).toBe(100);
  }, 60_000);

  it('starts full: rpm 1 sends its first call at once, and the second a minute later', async () => {
    const { llm, sent, clock } = await setup({ rpm: 1 });
    await llm.complete(chat('first'));
    const second = track(llm.complete(chat('second')));
    await clock.advanceAsync(59_999);
    expect(second.state()).toBe('pending');
    await clock.advanceAsync(1);
    await second.promise;
    expect(sent()).toEqual([{ at: 0, text: 'first' }, { at: 60_000, text: 'second' }]);
  });

  it('counts in limit-wait’s queued the requests waiting, not those admitted at the same moment', async () => {
    const { llm, upstream, events, sent, clock } = await setup({ requests: { limit: 8, windowMs: 60_000 } });
    const calls = Array.from({ length: 16 }, (_, i) => llm.complete(chat(`r${i}`)));
    await upstream.waitForRequests(8);
    expect(sent().map((entry) => entry.text)).toEqual(['r0', 'r1', 'r2', 'r3', 'r4', 'r5', 'r6', 'r7']);
    // The 9th is the first that really waits: it is alone in the queue.
    const waits = events.filter((event) => event.name === 'limit-wait');
    expect(waits[0]).toMatchObject({ limit: 'requests', queued: 1 });
    expect(waits.map((event) => event.queued)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    await clock.advanceAsync(60_000);
    await Promise.all(calls);
    expect(upstream.requests).toHaveLength(16);
  });

  it('admits waiters in arrival order', async () => {
    const { llm, upstream, clock } = await setup({ requests: { limit: 3, windowMs: 1_000 } });
    const calls = ['a', 'b', 'c', 'd', 'e'].map((text) => llm.complete(chat(text)));
    await clock.advanceAsync(3_000);
    await Promise.all(calls);
    expect(arrivals(upstream)).toEqual(['a', 'b', 'c', 'd', 'e']);
  });

  it('fails at once in reject mode, saying which limit and when to come back', async () => {
    const { llm, upstream, events, clock } = await setup({ requests: { limit: 2, windowMs: 60_000 }, mode: 'reject' });
    await llm.complete(chat('1'));
    await clock.advanceAsync(7_500);
    await llm.complete(chat('2'));
    const refused = llm.complete(chat('3'));
    await expect(refused).rejects.toBeInstanceOf(LimitRejectedError);
    // The first call leaves the window 60 s after it went, 52.5 s from now.
    await expect(refused).rejects.toMatchObject({
      name: 'LimitRejectedError',
      code: 'LIMIT_REJECTED',
      retryable: true,
      final: false,
      upstreamFault: false,
      limit: 'requests',
      key: 'global',
      retryAfterMs: 52_500,
    });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-reject', limit: 'requests', retryAfterMs: 52_500 }));
    expect(upstream.requests).toHaveLength(2);

    await clock.advanceAsync(52_500);
    await expect(llm.complete(chat('4'))).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('keeps a window per deployment for calls a router tagged with one', async () => {
    const { llm, upstream, events } = await setup({ rpm: 1, mode: 'reject' });
    const run = (deployment?: string) => llm.run(chat(deployment ?? 'untagged'), deployment ? { tags: { deployment } } : {});
    expect((await run('a')).state.ratelimit?.key).toBe('deployment=a|global');
    expect((await run('b')).state.ratelimit?.key).toBe('deployment=b|global');
    expect((await run()).state.ratelimit?.key).toBe('global');
    await expect(run('a')).rejects.toMatchObject({ code: 'LIMIT_REJECTED', key: 'deployment=a|global' });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-reject', key: 'deployment=a|global' }));
    expect(upstream.requests).toHaveLength(3);
  });

  it('forgets a window written before the wall clock stepped back, rather than hold it for the step', async () => {
    for (const mode of ['reject', 'wait'] as const) {
      const { llm, upstream, clock } = await setup({ requests: { limit: 2, windowMs: 60_000 }, mode, maxWaitMs: 120_000 });
      await llm.complete(chat('1'));
      await clock.advanceAsync(7_500);
      await llm.complete(chat('2'));
      // A step back within the skew between processes' clocks changes nothing: the window is still full.
      clock.jump(-5_000);
      if (mode === 'reject') await expect(llm.complete(chat('3'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', retryAfterMs: 52_500 });
      // An hour's step back: before, the window read as full for the hour, as if both calls were still to come.
      // The window before the step is forgotten, as an expired one: then the limit holds again from the new time.
      clock.jump(-3_600_000);
      await expect(llm.complete(chat('4'))).resolves.toMatchObject({ object: 'chat.completion' });
      await expect(llm.complete(chat('5'))).resolves.toMatchObject({ object: 'chat.completion' });
      if (mode === 'reject') await expect(llm.complete(chat('6'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', retryAfterMs: 60_000 });
      expect(upstream.requests).toHaveLength(4);
    }
  });
});

describe('rateLimit: tokens per window', () => {
  const usageFor = (text: string) =>
    text.startsWith('heavy') ? { prompt_tokens: 300, completion_tokens: 100 } : { prompt_tokens: 10, completion_tokens: 5 };

  it('reserves prompt plus output cap, then corrects the reservation to the usage the upstream reported', async () => {
    const { llm, upstream, events, clock } = await setup(
      { tokens: { limit: 1_000 }, countTokens: () => 200 },
      { reply: (body) => ({ usage: usageFor(String(body.messages.at(-1)?.content)) }) },
    );
    const first = await llm.run(chat('light', { max_tokens: 100 }));
    expect(first.state.ratelimit).toEqual({ key: 'global', waitedMs: 0, reservedTokens: 300, admittedAt: clock.start });
    // 300 reserved, 15 used; then 300 reserved and 400 used, twice: the 100 above each reservation are booked too.
    await clock.advanceAsync(10_000);
    await llm.complete(chat('heavy 1', { max_tokens: 100 }));
    await clock.advanceAsync(10_000);
    await llm.complete(chat('heavy 2', { max_tokens: 100 }));
    expect(events).toEqual([]);

    // 15 + 400 + 400 booked, 300 more asked: 115 too many, so it waits until the first heavy call leaves the window.
    const fourth = track(llm.run(chat('light 2', { max_tokens: 100 })));
    await clock.advanceAsync(0);
    expect(events).toEqual([expect.objectContaining({ name: 'limit-wait', limit: 'tokens', waitMs: 50_000, queued: 1 })]);
    await clock.advanceAsync(49_999);
    expect(upstream.requests).toHaveLength(3);
    await clock.advanceAsync(1);
    const ctx = await fourth.promise;
    expect(ctx.state.ratelimit).toEqual({ key: 'global', waitedMs: 50_000, reservedTokens: 300, admittedAt: clock.start + 70_000 });
  });

  it('holds a stream’s reservation until the stream ends, then corrects it to the stream’s usage', async () => {
    const { llm, upstream, clock } = await setup(
      { tokens: { limit: 500 }, countTokens: () => 200 },
      { reply: (body) => ({ content: 'one two three', usage: usageFor(String(body.messages.at(-1)?.content)) }) },
    );
    const iterator = llm.stream(chat('stream', { max_tokens: 100 }))[Symbol.asyncIterator]();
    await iterator.next();
    // 300 of 500 are held while the stream is open: the next 300 must wait.
    const waiting = track(llm.complete(chat('after', { max_tokens: 100 })));
    await clock.advanceAsync(0);
    expect(upstream.requests).toHaveLength(1);

    while (!(await iterator.next()).done);
    // The stream used 15: its refund lets the waiter go without any time passing.
    await clock.until(() => waiting.state() !== 'pending');
    expect(waiting.state()).toBe('resolved');
    expect(upstream.requests).toHaveLength(2);
  });

  it('rejects at once a reservation the window can never hold, and lets one of the whole limit go after a quiet spell', async () => {
    const { llm, upstream, sent, clock } = await setup({ tokens: { limit: 1_000 }, countTokens: () => 0 });
    await expect(llm.complete(chat('huge', { max_tokens: 1_001 }))).rejects.toMatchObject({
      code: 'LIMIT_REJECTED',
      limit: 'tokens',
      retryable: false,
      message: expect.stringMatching(/1001 tokens can never fit 1000 tokens per 60000 ms/),
    });
    expect(upstream.requests).toHaveLength(0);

    const whole = llm.complete(chat('whole', { max_tokens: 1_000 }));
    await whole;
    expect(sent()).toEqual([{ at: 0, text: 'whole' }]);
  });

  it('defaults the reservation to the shared prompt count, else core’s estimate, plus 1024 output tokens', async () => {
    const { llm, clock } = await setup({ tpm: 200_000 });
    const ctx = await llm.run(chat('Hello there', { n: 2 }));
    // estimateTokens: ceil(11 / 4) + 1 × 4 + 3 = 10; 1024 for each of the 2 choices.
    expect(ctx.state.ratelimit?.reservedTokens).toBe(10 + 2 * 1024);
  });
});

describe('rateLimit: concurrency', () => {
  it('caps requests in flight, holding each slot until its slow answer arrives', async () => {
    const { llm, upstream, sent, events, clock } = await setup({ concurrency: 2 });
    upstream.enqueue({ kind: 'delay', latencyMs: 1_000 }, { kind: 'delay', latencyMs: 1_000 }, { kind: 'delay', latencyMs: 1_000 });
    const calls = ['a', 'b'].map((text) => track(llm.complete(chat(text))));
    await upstream.waitForRequests(2);
    expect(events).toEqual([]);
    calls.push(...['c', 'd', 'e'].map((text) => track(llm.complete(chat(text)))));
    expect(events).toEqual(
      [1, 2, 3].map((queued) => expect.objectContaining({ name: 'limit-wait', key: 'global', limit: 'concurrency', waitMs: 0, queued })),
    );
    await clock.advanceAsync(999);
    expect(upstream.requests).toHaveLength(2);

    await clock.advanceAsync(1);
    await upstream.waitForRequests(4);
    // c is delayed too and d answers at once, so e takes d's slot.
    await clock.until(() => upstream.requests.length === 5);
    expect(calls.filter((call) => call.state() === 'resolved').length).toBeGreaterThanOrEqual(2);
    await clock.advanceAsync(1_000);
    await Promise.all(calls.map((call) => call.promise));
    // c and d pass the limiter in order at the same instant; their sockets may race to the mock.
    expect(sent().map((entry) => entry.text)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(sent().map((entry) => entry.at)).toEqual([0, 0, 1_000, 1_000, 1_000]);
  });

  it('frees the slot whatever the end: error, abort, cancelled stream, cut stream', async () => {
    const { llm, upstream, clock } = await setup({ concurrency: 1 });
    upstream.enqueue({ kind: 'status', status: 500 });
    await expect(llm.complete(chat('error'))).rejects.toMatchObject({ code: 'SERVER_ERROR' });

    upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const hung = llm.complete(chat('aborted'), { signal: controller.signal });
    await upstream.waitForRequests(2);
    controller.abort();
    await expect(hung).rejects.toMatchObject({ code: 'ABORTED' });

    for await (const _chunk of llm.stream(chat('cancelled stream'))) break;

    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const cut = async () => {
      for await (const _chunk of llm.stream(chat('cut stream')));
    };
    await expect(cut()).rejects.toMatchObject({ code: 'STREAM_CUT' });

    upstream.enqueue({ kind: 'reset' });
    await expect(llm.complete(chat('reset'))).rejects.toMatchObject({ code: 'CONNECTION' });

    // With one slot, any leak would make this wait forever; no time passes.
    await expect(llm.complete(chat('after'))).resolves.toMatchObject({ object: 'chat.completion' });
    expect(upstream.requests).toHaveLength(6);
  });
});

describe('rateLimit: leaving the queue', () => {
  it('rejects at once when the wait would pass maxWaitMs, and when the queue is full', async () => {
    const { llm, upstream, events, clock } = await setup({ requests: { limit: 1, windowMs: 1_000 }, maxWaitMs: 500, maxQueue: 1 });
    await llm.complete(chat('first'));
    // The window has room again 1 000 ms from now, more than maxWaitMs.
    await expect(llm.complete(chat('too late'))).rejects.toMatchObject({
      code: 'LIMIT_REJECTED',
      limit: 'requests',
      retryAfterMs: 1_000,
      message: expect.stringMatching(/maxWaitMs/),
    });
    await clock.advanceAsync(600);
    const queued = llm.complete(chat('queued'));
    await expect(llm.complete(chat('overflow'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'queue' });
    await clock.advanceAsync(400);
    await queued;
    expect(arrivals(upstream)).toEqual(['first', 'queued']);
    expect(events.filter((event) => event.name === 'limit-reject').map((event) => event.limit)).toEqual(['requests', 'queue']);
  });

  it('with maxQueue 0, sends what can go at once and refuses anything that would wait', async () => {
    const { llm, upstream, clock } = await setup({ concurrency: 1, maxQueue: 0 });
    upstream.enqueue({ kind: 'delay', latencyMs: 1_000 });
    const first = llm.complete(chat('first'));
    await upstream.waitForRequests(1);
    await expect(llm.complete(chat('second'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'queue' });
    await clock.advanceAsync(1_000);
    await first;
    await llm.complete(chat('third'));
    expect(arrivals(upstream)).toEqual(['first', 'third']);
  });

  it('gives up a concurrency wait after maxWaitMs', async () => {
    const { llm, upstream, clock } = await setup({ concurrency: 1, maxWaitMs: 500 });
    upstream.enqueue({ kind: 'delay', latencyMs: 1_000 });
    const slow = llm.complete(chat('slow'));
    await upstream.waitForRequests(1);
    const waiting = track(llm.complete(chat('waiting')));
    await clock.advanceAsync(499);
    expect(waiting.state()).toBe('pending');
    await clock.advanceAsync(1);
    await expect(waiting.promise).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'concurrency' });
    await clock.advanceAsync(500);
    await slow;
    expect(upstream.requests).toHaveLength(1);
  });

  it('lets an aborted waiter leave at once, and the others keep their turn', async () => {
    const { llm, upstream, clock } = await setup({ requests: { limit: 1, windowMs: 1_000 } });
    await llm.complete(chat('a'));
    const controller = new AbortController();
    const aborted = llm.complete(chat('b'), { signal: controller.signal });
    const next = llm.complete(chat('c'));
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.advanceAsync(1_000);
    await next;
    expect(arrivals(upstream)).toEqual(['a', 'c']);
  });

  it('gives an aborted waiter’s place in the window to the next: an aborted call takes no slot', async () => {
    const { llm, upstream, clock } = await setup({ requests: { limit: 2, windowMs: 1_000 } });
    await Promise.all([llm.complete(chat('a')), llm.complete(chat('b'))]);
    const controller = new AbortController();
    const aborted = llm.complete(chat('aborted'), { signal: controller.signal });
    const waiting = llm.complete(chat('c'));
    await clock.advanceAsync(500);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ code: 'ABORTED' });
    await clock.advanceAsync(500);
    await waiting;
    // Had the aborted call taken a place at 1 000 ms, this one would wait until 2 000 ms.
    await llm.complete(chat('d'));
    expect(arrivals(upstream)).toEqual(['a', 'b', 'c', 'd']);
    expect(upstream.requests.map((request) => request.at - clock.start)).toEqual([0, 0, 1_000, 1_000]);
  });

  it('records nothing for a call aborted while its admission is with the store', async () => {
    const controller = new AbortController();
    const inner = memoryStore();
    // The call aborts while the store decides, as when the caller gives up during a slow store round trip.
    const store: Store = { ...inner, update: (key, update, ttlMs) => inner.update(key, update, ttlMs).finally(() => controller.abort()) };
    const { llm, upstream, sent, clock } = await setup({ rpm: 1, store });
    await expect(llm.complete(chat('aborted'), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(sent()).toEqual([]);
    const state = await inner.get<WindowState>('sluice:ratelimit:r1/60000:global');
    expect(state?.requests).toEqual({ total: 0, flat: [] });
    await llm.complete(chat('next'));
    expect(arrivals(upstream)).toEqual(['next']);
  });

  it('turns away at once a waiter whose deadline comes before its turn', async () => {
    const { llm, upstream, events, clock } = await setup({ requests: { limit: 1, windowMs: 1_000 } });
    await llm.complete(chat('a'));
    // Its turn is 1 000 ms away; its deadline 500.
    await expect(llm.complete(chat('b'), { timeoutMs: 500 })).rejects.toMatchObject({
      code: 'LIMIT_REJECTED',
      limit: 'requests',
      retryAfterMs: 1_000,
      message: expect.stringMatching(/deadline/),
    });
    expect(events).toEqual([expect.objectContaining({ name: 'limit-reject', limit: 'requests', retryAfterMs: 1_000 })]);
    expect(arrivals(upstream)).toEqual(['a']);
  });

  it('drops a waiter for a slot when its deadline passes, and the queue goes on', async () => {
    const { llm, upstream, clock } = await setup({ concurrency: 1 });
    upstream.enqueue({ kind: 'delay', latencyMs: 2_000 });
    const slow = llm.complete(chat('slow'));
    await upstream.waitForRequests(1);
    // Waiting for a slot has no known end, so it waits until its deadline passes.
    const late = track(llm.complete(chat('late'), { timeoutMs: 700 }));
    const patient = llm.complete(chat('patient'));
    await clock.advanceAsync(700);
    await expect(late.promise).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await clock.advanceAsync(1_300);
    await Promise.all([slow, patient]);
    expect(arrivals(upstream)).toEqual(['slow', 'patient']);
  });
});

describe('rateLimit: keys', () => {
  it('keeps a bucket per tenant: one tenant waiting does not hold up another', async () => {
    const { llm, upstream, sent, clock } = await setup({ requests: { limit: 1, windowMs: 1_000 }, key: { tag: 'tenant' } });
    await llm.complete(chat('acme 1'), { tags: { tenant: 'acme' } });
    const acme = llm.run(chat('acme 2'), { tags: { tenant: 'acme' } });
    const globex = await llm.run(chat('globex 1'), { tags: { tenant: 'globex' } });
    expect(globex.state.ratelimit).toEqual({ key: 'tenant:globex', waitedMs: 0, reservedTokens: 0, admittedAt: clock.start });
    await clock.advanceAsync(1_000);
    expect((await acme).state.ratelimit).toMatchObject({ key: 'tenant:acme', waitedMs: 1_000 });
    expect(sent().map((entry) => entry.text)).toEqual(['acme 1', 'globex 1', 'acme 2']);
    expect(upstream.requests).toHaveLength(3);
  });

  it('keys per model, or by a function of the call', async () => {
    const byModel = await setup({ requests: { limit: 1, windowMs: 1_000 }, key: 'model', mode: 'reject' });
    await byModel.llm.complete(chat('x', { model: 'a' }));
    await byModel.llm.complete(chat('x', { model: 'b' }));
    await expect(byModel.llm.complete(chat('x', { model: 'a' }))).rejects.toMatchObject({ key: 'model:a' });

    const byFunction = await setup({ concurrency: 5, key: (ctx) => `feature:${ctx.tags.feature}` });
    const ctx = await byFunction.llm.run(chat('x'), { tags: { feature: 'search' } });
    expect(ctx.state.ratelimit?.key).toBe('feature:search');
  });

  it('speaks the shared key vocabulary: origin-model, and a tag with a name for calls without it', async () => {
    const byOrigin = await setup({ rpm: 10, key: 'origin-model' });
    const ctx = await byOrigin.llm.run(chat('x', { model: 'deepseek-v3.2' }));
    expect(ctx.state.ratelimit?.key).toBe(`${byOrigin.upstream.url}|deepseek-v3.2`);

    const byTag = await setup({ rpm: 10, key: { tag: 'tenant', missing: 'anonymous' } });
    expect((await byTag.llm.run(chat('x'))).state.ratelimit?.key).toBe('tenant:anonymous');
  });
});

describe('rateLimit: cooperative pause', () => {
  it('pauses the key on a 429 with Retry-After: queued requests reach the upstream only when it ends', async () => {
    const { llm, upstream, events, sent, clock } = await setup({ concurrency: 1 });
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '2' } });
    const first = llm.complete(chat('first'));
    const queued = ['second', 'third'].map((text) => track(llm.complete(chat(text))));
    await expect(first).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 2_000 });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', key: 'global', untilMs: clock.start + 2_000, pauseMs: 2_000, reason: 'retry-after' }));

    await clock.advanceAsync(1_999);
    expect(upstream.requests).toHaveLength(1);
    await clock.advanceAsync(1);
    await Promise.all(queued.map((call) => call.promise));
    expect(arrivals(upstream)).toEqual(['first', 'second', 'third']);
    expect(sent().map((entry) => entry.at)).toEqual([0, 2_000, 2_000]);
  });

  it('turns away waiters that cannot outlast the pause', async () => {
    const { llm, upstream, clock } = await setup({ concurrency: 1, maxWaitMs: 1_000 });
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '5' } });
    const first = llm.complete(chat('first'));
    const queued = llm.complete(chat('second'));
    await expect(first).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    await expect(queued).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'pause', retryAfterMs: 5_000 });
  });

  it('with paceFromHeaders, pauses until the reset when a response says nothing remains', async () => {
    const { llm, upstream, events, clock } = await setup({ concurrency: 1, paceFromHeaders: true });
    upstream.enqueue({
      kind: 'status',
      status: 503,
      headers: { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1m30s', 'x-ratelimit-remaining-tokens': '5000', 'x-ratelimit-reset-tokens': '20ms' },
    });
    await expect(llm.complete(chat('first'))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', pauseMs: 90_000, reason: 'headers' }));
    const next = track(llm.complete(chat('second')));
    await clock.advanceAsync(89_999);
    expect(upstream.requests).toHaveLength(1);
    await clock.advanceAsync(1);
    await next.promise;
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('rateLimit: the longest pause', () => {
  it('pauses at most maxPauseMs, whatever the answer asks, and pauses again at the next 429', async () => {
    const { llm, upstream, events, clock } = await setup({ concurrency: 1, paceFromHeaders: true, maxPauseMs: 30_000 });
    // A day, and a malformed reset of a million hours: both cut to 30 s.
    upstream.enqueue({
      kind: 'status',
      status: 429,
      headers: { 'retry-after': '86400', 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': '1000000h' },
    });
    await expect(llm.complete(chat('first'))).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 86_400_000 });
    expect(events.filter((event) => event.name === 'limit-pause')).toEqual([
      expect.objectContaining({ untilMs: clock.start + 30_000, pauseMs: 30_000 }),
    ]);
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '86400' } });
    const next = track(llm.complete(chat('second')));
    await clock.advanceAsync(29_999);
    expect(upstream.requests).toHaveLength(1);
    await clock.advanceAsync(1);
    await expect(next.promise).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(upstream.requests).toHaveLength(2);
    expect(events.filter((event) => event.name === 'limit-pause')).toHaveLength(2);
  });

  it('honours a long pause with maxPauseMs: Infinity, and names a bad value', async () => {
    const { llm, upstream, events } = await setup({ concurrency: 1, maxPauseMs: Infinity });
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '86400' } });
    await expect(llm.complete(chat('first'))).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', pauseMs: 86_400_000 }));
    expect(() => rateLimit({ rpm: 10, maxPauseMs: 0 })).toThrow(expect.objectContaining({ field: 'rateLimit.maxPauseMs' }));
  });
});

describe('rateLimit: pacing from a successful response', () => {
  it('with paceFromHeaders, a 200 saying nothing remains pauses the key until its reset', async () => {
    const headers = { 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '2s' };
    const { llm, upstream, events, clock } = await setup({ concurrency: 1, paceFromHeaders: true }, { headers });
    await expect(llm.complete(chat('first'))).resolves.toBeDefined();
    expect(events).toContainEqual(expect.objectContaining({ name: 'limit-pause', pauseMs: 2_000, reason: 'headers' }));
    const next = track(llm.complete(chat('second')));
    await clock.advanceAsync(1_999);
    expect(upstream.requests).toHaveLength(1);
    await clock.advanceAsync(1);
    await next.promise;
    expect(upstream.requests).toHaveLength(2);
  });
});

describe('rateLimit: state in the store', () => {
  /** A store whose every call fails, as a store across a network that is down. */
  const downStore: Store = {
    get: () => Promise.reject(new Error('store down')),
    set: () => Promise.reject(new Error('store down')),
    update: () => Promise.reject(new Error('store down')),
    delete: () => Promise.reject(new Error('store down')),
  };

  it('keeps each key’s window under sluice:ratelimit:, and lets an idle key’s record expire after a window', async () => {
    const { llm, store, clock } = await setup({ requests: { limit: 2, windowMs: 10_000 }, key: { tag: 'tenant' } });
    await llm.complete(chat('x'), { tags: { tenant: 'acme' } });
    const key = 'sluice:ratelimit:r2/10000:tenant:acme';
    expect(await store.get<WindowState>(key)).toMatchObject({ requests: { total: 1, flat: [clock.start, 1] } });
    await clock.advanceAsync(9_999);
    expect(await store.get(key)).toBeDefined();
    await clock.advanceAsync(1);
    expect(await store.get(key)).toBeUndefined();
  });

  it('fails open by default: a call goes ahead when the store is down, and store-error says so', async () => {
    const { llm, upstream } = await setup({ rpm: 1, store: downStore });
    const errors: Array<SluiceEvents['store-error']> = [];
    llm.events.on('store-error', (event) => errors.push(event));
    await llm.complete(chat('a'));
    await llm.complete(chat('b'));
    expect(arrivals(upstream)).toEqual(['a', 'b']);
    expect(errors[0]).toMatchObject({ name: 'ratelimit', key: 'r1/60000:global', operation: 'update', policy: 'open' });
  });

  it('with onStoreError closed, refuses the call with STORE_UNAVAILABLE and sends nothing', async () => {
    const { llm, upstream } = await setup({ rpm: 1, store: downStore, onStoreError: 'closed' });
    await expect(llm.complete(chat('a'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true });
    expect(upstream.requests).toHaveLength(0);
  });

  it('with onStoreError memory, keeps limiting on this process’s own windows', async () => {
    const { llm, upstream } = await setup({ rpm: 1, store: downStore, onStoreError: 'memory', mode: 'reject' });
    await llm.complete(chat('a'));
    await expect(llm.complete(chat('b'))).rejects.toMatchObject({ code: 'LIMIT_REJECTED', retryAfterMs: 60_000 });
    expect(arrivals(upstream)).toEqual(['a']);
  });
});

describe('rateLimit: options', () => {
  it.each([
    [{}, 'rateLimit', /at least one of/],
    [{ rpm: 0 }, 'rateLimit.rpm', /./],
    [{ rpm: 1.5 }, 'rateLimit.rpm', /./],
    [{ requests: { limit: 10, burst: 1 } }, 'rateLimit.requests.burst', /not an option/],
    [{ tokens: { limit: 100, windowMs: -1 } }, 'rateLimit.tokens.windowMs', /./],
    [{ rpm: 10, requests: { limit: 10 } }, 'rateLimit.requests', /not both/],
    [{ concurrency: 0 }, 'rateLimit.concurrency', /./],
    [{ rpm: 10, mode: 'later' }, 'rateLimit.mode', /./],
    [{ rpm: 10, key: { tag: '' } }, 'rateLimit.key', /./],
    [{ rpm: 10, onStoreError: 'ignore' }, 'rateLimit.onStoreError', /./],
    [{ rpm: 10, key: 'user' }, 'rateLimit.key', /./],
    [{ rpm: 10, maxWaitMs: -5 }, 'rateLimit.maxWaitMs', /./],
    [{ rpm: 10, countTokens: 42 }, 'rateLimit.countTokens', /function/],
    [{ rmp: 10 }, 'rateLimit.rmp', /did you mean rpm\?/],
  ])('rejects %j naming %s', async (options, field, message) => {
    const { rateLimit } = await import('./rate-limit.js');
    expect(() => rateLimit(options as never)).toThrow(expect.objectContaining({ code: 'VALIDATION', field, message: expect.stringMatching(message) }));
  });
});
