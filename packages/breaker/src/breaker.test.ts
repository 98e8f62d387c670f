import { memoryStore, type Middleware, type SluiceEvents, sleep, type Store } from '@sluice/core';
import type { MockUpstreamOptions } from '@sluice/testing';
import { chat, type CheckedStore, checkedStore, closeTestPipelines, drain, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { type BreakerMiddleware, breaker } from './breaker.js';
import { CircuitOpenError } from './errors.js';
import type { BreakerOptions } from './options.js';

type CircuitName = 'circuit-open' | 'circuit-half-open' | 'circuit-close';
type CircuitEvent = { [K in CircuitName]: { name: K } & SluiceEvents[K] }[CircuitName];

afterEach(closeTestPipelines);

const ask = (model = 'gpt-4.1') => chat('Hello there', { model });

/**
 * The kit's test pipeline (manual clock, purity-checking store) running
 * `breaker(options)` (or the `circuit` given), with `outer` middleware
 * outside it and `inner` inside, if any.
 */
async function setup(
  options: BreakerOptions = {},
  extra: { upstream?: MockUpstreamOptions; store?: Store; outer?: Middleware; inner?: Middleware; circuit?: BreakerMiddleware } = {},
) {
  const circuit = extra.circuit ?? breaker(options);
  const middleware = [extra.outer, circuit, extra.inner].filter((step): step is Middleware => step !== undefined);
  const t = await testPipeline({ middleware, ...(extra.upstream && { upstream: extra.upstream }), ...(extra.store && { store: extra.store }) });
  return {
    ...t,
    circuit,
    /** The default circuit key of `model` on this upstream. */
    key: (model = 'gpt-4.1') => `${t.upstream.url}|${model}`,
    /** The circuit events so far, each as `{ name, ...payload }`. */
    get seen(): CircuitEvent[] {
      return t.events.all.filter(({ name }) => name.startsWith('circuit-')).map(({ name, payload }) => ({ name, ...payload }) as CircuitEvent);
    },
  };
}
type Setup = Awaited<ReturnType<typeof setup>>;

/** Sends `count` calls that each get a 503, one after another, and checks each failed with it. */
async function failTimes(h: Setup, count: number, model = 'gpt-4.1'): Promise<void> {
  for (let i = 0; i < count; i++) {
    h.upstream.enqueue({ kind: 'status', status: 503 });
    await expect(h.llm.complete(ask(model))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
  }
}

let h: Setup;

describe('breaker: on the memory store, whose writes it does not await', () => {
  it('counts a run of failures, breaks it on a success and opens on 10 in a row, as on a store that answers later', async () => {
    h = await setup({}, { store: memoryStore() });
    await failTimes(h, 9);
    await h.llm.complete(ask());
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
    await failTimes(h, 9);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 9 });
    await failTimes(h, 1);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 10, reason: 'consecutive' });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', key: h.key() });
    expect(h.seen.map(({ name }) => name)).toEqual(['circuit-open']);
  });

  it('judges concurrent calls one each: 10 failing at once open the circuit, 10 succeeding at once leave it closed at 0', async () => {
    h = await setup({}, { store: memoryStore() });
    await Promise.all(Array.from({ length: 10 }, () => h.llm.complete(ask())));
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
    for (let i = 0; i < 10; i++) h.upstream.enqueue({ kind: 'status', status: 503 });
    const failed = await Promise.allSettled(Array.from({ length: 10 }, () => h.llm.complete(ask())));
    expect(failed.every((result) => result.status === 'rejected')).toBe(true);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 10 });
  });
});

describe('breaker: on the memory store, settling into the record it wrote', () => {
  it('counts into one record without copying it, and never changes a record set from outside', async () => {
    const store = memoryStore();
    h = await setup({ failureRate: { threshold: 0.5, windowMs: 60_000, minimumCalls: 100 } }, { store });
    const key = `sluice:breaker:${h.key()}`;
    const outside = { state: 'closed', closedAt: null, failures: 2, window: [] as number[][], openedAt: null, openUntil: null, openMs: null, reason: null, trips: 0, probes: [], passed: 0, judged: 3 };
    const before = JSON.stringify(outside);
    await store.set(key, outside);
    const records: unknown[] = [];
    for (let i = 0; i < 4; i++) {
      if (i % 2 === 1) h.upstream.enqueue({ kind: 'status', status: 503 });
      await h.llm.complete(ask()).catch(() => {});
      records.push(await store.get(key));
    }
    expect(JSON.stringify(outside)).toBe(before);
    expect(records[0]).not.toBe(outside);
    expect(records.every((record) => record === records[0])).toBe(true);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 1, window: { calls: 4, failures: 2 } });
  });
});

describe('breaker: a stored circuit this version did not write', () => {
  const open = { state: 'open', closedAt: null, failures: 10, window: [], openedAt: 0, openUntil: 30_000, openMs: 30_000, reason: 'consecutive', trips: 1, probes: [], passed: 0, judged: 10 };
  it.each([
    ['an open circuit whose openUntil is not a number', { ...open, openUntil: 'x' }],
    ['an open circuit with no openUntil', { ...open, openUntil: null }],
    ['a state that is no state', { ...open, state: [{ a: 1 }] }],
    ['a window that is not a list', { ...open, state: 'closed', window: 'x' }],
  ])('reads %s as a closed circuit, and counts afresh', async (_label, record) => {
    const store = memoryStore();
    h = await setup({}, { store });
    await store.set(`sluice:breaker:${h.key()}`, record);
    // Before, every call failed CIRCUIT_OPEN (or UNEXPECTED) for as long as calls kept the record alive.
    await h.clock.advanceAsync(3_600_000);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
    await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    await failTimes(h, 10);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it('lets a probe through a half-open circuit that has passed as many probes as it takes yet never closed', async () => {
    const store = memoryStore();
    h = await setup({}, { store });
    await store.set(`sluice:breaker:${h.key()}`, { ...open, state: 'half-open', openUntil: null, passed: 1e308 });
    // Before, no probe slot was ever free: once this process had seen the record, every call failed CIRCUIT_OPEN.
    for (let i = 0; i < 3; i++) await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
  });
});

describe("breaker: the original client's timeline", () => {
  it('opens after 10 consecutive 503s and fails fast for 30 s without reaching the upstream', async () => {
    h = await setup();
    await failTimes(h, 9);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 9 });
    await failTimes(h, 1);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 10, retryAfterMs: 30_000, reason: 'consecutive' });

    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryable: false, key: h.key(), retryAfterMs: 30_000 });
    await h.clock.advanceAsync(29_999);
    const error = await h.llm.complete(ask()).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(CircuitOpenError);
    expect(error).toMatchObject({ code: 'CIRCUIT_OPEN', state: 'open', retryAfterMs: 1 });
    expect(h.upstream.requests).toHaveLength(10);
  });

  it('after 30 s lets exactly one probe through while concurrent calls fail fast, and its success closes the circuit', async () => {
    h = await setup();
    await failTimes(h, 10);
    await h.clock.advanceAsync(30_000);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', retryAfterMs: 0, probes: 0 });

    h.upstream.enqueue({ kind: 'delay', latencyMs: 2_000 });
    const probe = h.llm.complete(ask());
    const others = Array.from({ length: 5 }, () =>
      expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'half-open', retryAfterMs: 0 }),
    );
    await Promise.all(others);
    await h.upstream.waitForRequests(11);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', probes: 1 });
    await h.clock.advanceAsync(2_000);
    await expect(probe).resolves.toMatchObject({ object: 'chat.completion' });
    expect(h.upstream.requests).toHaveLength(11);

    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0, trips: 0, openedAt: null });
    await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    expect(h.upstream.requests).toHaveLength(12);
    const [opened, halfOpen, closed] = h.seen as Array<{ id?: string }>;
    expect(h.seen).toEqual([
      { name: 'circuit-open', id: expect.any(String), key: h.key(), reason: 'consecutive', failures: 10, openMs: 30_000 },
      { name: 'circuit-half-open', id: expect.any(String), key: h.key() },
      { name: 'circuit-close', id: expect.any(String), key: h.key(), reason: 'probe-succeeded' },
    ]);
    // Each names the call that changed it: the tenth failure opened it; the probe turned and closed it.
    expect(opened?.id).not.toBe(halfOpen?.id);
    expect(halfOpen?.id).toBe(closed?.id);
  });

  it('lets a probe through when the wall clock stepped back past the opening, rather than stay open for the step', async () => {
    h = await setup();
    await failTimes(h, 10);
    // A small step (clocks of processes sharing a store differ by as much) only makes the wait longer by it.
    h.clock.jump(-5_000);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryAfterMs: 35_000 });
    // An hour's step: before, the circuit stayed open an hour and a half-open probe's slot was held as long.
    h.clock.jump(-3_600_000);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', retryAfterMs: 0 });
    await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
    expect(h.upstream.requests).toHaveLength(11);

    // A probe in flight across the step does not hold its slot for the step either.
    await failTimes(h, 10);
    await h.clock.advanceAsync(30_000);
    h.upstream.enqueue({ kind: 'delay', latencyMs: 2_000 });
    const probe = h.llm.complete(ask());
    await h.upstream.waitForRequests(22);
    h.clock.jump(-3_600_000);
    await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    await h.clock.advanceAsync(2_000);
    await expect(probe).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('reopens for another 30 s when the probe fails', async () => {
    h = await setup();
    await failTimes(h, 10);
    await h.clock.advanceAsync(30_000);
    await failTimes(h, 1); // the probe
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'probe-failed', failures: 11, retryAfterMs: 30_000, trips: 2 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryAfterMs: 30_000 });
    expect(h.upstream.requests).toHaveLength(11);
    expect(h.seen.at(-1)).toEqual({ name: 'circuit-open', id: expect.any(String), key: h.key(), reason: 'probe-failed', failures: 11, openMs: 30_000 });

    await h.clock.advanceAsync(30_000);
    await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
  });

  it('grows the open time on repeated trips with backoff, capped at maxMs', async () => {
    h = await setup({ failures: 2, openMs: 1_000, backoff: { factor: 2, maxMs: 3_000 } });
    await failTimes(h, 2);
    const waits: unknown[] = [];
    for (let trip = 0; trip < 3; trip++) {
      const open = await h.circuit.state(h.key());
      waits.push(await h.llm.complete(ask()).catch((error: CircuitOpenError) => error.retryAfterMs));
      await h.clock.advanceAsync(open.retryAfterMs ?? 0);
      await failTimes(h, 1); // the probe fails
    }
    expect(waits).toEqual([1_000, 2_000, 3_000]);
    expect(h.seen.filter((e) => e.name === 'circuit-open').map((e) => e.openMs)).toEqual([1_000, 2_000, 3_000, 3_000]);
  });
});

describe('breaker: circuits are keyed', () => {
  it('keeps serving model B while model A is open', async () => {
    h = await setup({ failures: 3 });
    await failTimes(h, 3, 'gpt-4.1');
    await expect(h.llm.complete(ask('gpt-4.1'))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', key: h.key('gpt-4.1') });
    await expect(h.llm.complete(ask('deepseek-v3.2'))).resolves.toMatchObject({ model: 'deepseek-v3.2' });
    expect(await h.circuit.state(h.key('deepseek-v3.2'))).toMatchObject({ state: 'closed', failures: 0 });
    expect(h.upstream.requests.map((r) => (r.body as { model: string }).model)).toEqual([
      'gpt-4.1', 'gpt-4.1', 'gpt-4.1', 'deepseek-v3.2',
    ]);
  });

  it('uses a key function of the context when given one', async () => {
    h = await setup({ failures: 1, key: (ctx) => `tenant:${ctx.tags.tenant ?? 'none'}` });
    h.upstream.enqueue({ kind: 'status', status: 500 });
    await expect(h.llm.complete(ask(), { tags: { tenant: 'a' } })).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(h.llm.complete(ask(), { tags: { tenant: 'a' } })).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', key: 'tenant:a' });
    await expect(h.llm.complete(ask(), { tags: { tenant: 'b' } })).resolves.toBeDefined();
  });

  it('takes the shared key vocabulary: one circuit per tag value, or one for all', async () => {
    h = await setup({ failures: 1, key: { tag: 'tenant', missing: 'anonymous' } });
    h.upstream.enqueue({ kind: 'status', status: 500 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(h.llm.complete(ask('deepseek-v3.2'))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', key: 'tenant:anonymous' });
    await expect(h.llm.complete(ask(), { tags: { tenant: 'acme' } })).resolves.toBeDefined();
    expect(await h.circuit.state('tenant:acme')).toMatchObject({ state: 'closed' });

    const global = await setup({ failures: 1, key: 'global' });
    global.upstream.enqueue({ kind: 'status', status: 500 });
    await expect(global.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(global.llm.complete(ask('deepseek-v3.2'))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', key: 'global' });
  });

  it('rejects a key function that returns no string, naming breaker.key', async () => {
    h = await setup({ key: () => '' });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'VALIDATION', field: 'breaker.key' });
    expect(h.upstream.requests).toHaveLength(0);
  });
});

describe('breaker: what counts as a failure', () => {
  it('does not count 4xx, 429, a caller abort or the caller’s own deadline', async () => {
    h = await setup({ failures: 1 });
    for (const status of [400, 401, 403, 404, 409, 422, 429]) {
      h.upstream.enqueue({ kind: 'status', status });
      await expect(h.llm.complete(ask())).rejects.toMatchObject({ status });
    }
    h.upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const aborted = expect(h.llm.complete(ask(), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    await h.upstream.waitForRequests(8);
    controller.abort();
    await aborted;

    h.upstream.enqueue({ kind: 'hang' });
    // Asserted before time moves, so the rejection is handled when it happens.
    const late = expect(h.llm.complete(ask(), { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await h.upstream.waitForRequests(9);
    await h.clock.advanceAsync(5_000);
    await late;
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });

    await failTimes(h, 1);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open' });
  });

  it('counts connection resets, HTML error pages, malformed bodies and upstream timeouts', async () => {
    h = await setup({ failures: 4 });
    h.upstream.enqueue({ kind: 'reset' }, { kind: 'html' }, { kind: 'malformed' });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CONNECTION' });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR', status: 502 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE' });
    h.upstream.enqueue({ kind: 'hang' });
    const hung = expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'attempt' });
    await h.upstream.waitForRequests(4);
    await h.clock.advanceAsync(60_000); // the transport's attempt timeout
    await hung;
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 4 });
  });

  it('counts a slow success as a failure past slowCallMs', async () => {
    h = await setup({ failures: 3, slowCallMs: 1_000 });
    const slow = async (latencyMs: number) => {
      h.upstream.enqueue({ kind: 'delay', latencyMs });
      const reply = h.llm.complete(ask());
      await h.upstream.waitForRequests(h.upstream.requests.length + 1);
      await h.clock.advanceAsync(latencyMs);
      await expect(reply).resolves.toMatchObject({ object: 'chat.completion' });
    };
    await slow(1_500);
    await slow(1_500);
    await slow(1_000); // at the threshold is not slow
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
    await slow(1_001);
    await slow(5_000);
    await slow(1_500);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'consecutive', failures: 3 });
  });

  it('measures slowness from the upstream request, not from time queued in an inner limiter', async () => {
    const queue: Middleware = async function queue(ctx, next) {
      await sleep(5_000, { clock: ctx.clock, signal: ctx.signal });
      await next();
    };
    h = await setup({ failures: 1, slowCallMs: 1_000 }, { inner: queue });
    const reply = expect(h.llm.complete(ask())).resolves.toBeDefined();
    await h.clock.advanceAsync(5_000);
    await reply;
    const late = expect(h.llm.complete(ask(), { timeoutMs: 3_000 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await h.clock.advanceAsync(3_000);
    await late;
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
    expect(h.upstream.requests).toHaveLength(1);
  });

  it('counts a slow stream by the time to its headers, even when its consumer breaks out', async () => {
    h = await setup({ failures: 1, slowCallMs: 1_000 });
    h.upstream.enqueue({ kind: 'delay', latencyMs: 1_500 });
    const stream = h.llm.stream(ask())[Symbol.asyncIterator]();
    const first = stream.next();
    await h.upstream.waitForRequests(1);
    await h.clock.advanceAsync(1_500);
    await expect(first).resolves.toMatchObject({ done: false });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' }); // not settled yet
    await stream.return?.();
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'consecutive' });
  });

  it('uses isFailure instead of the default rule when given', async () => {
    h = await setup({ failures: 2, isFailure: (error) => error.code === 'RATE_LIMITED' });
    h.upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 429 }, { kind: 'status', status: 429 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 1 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 2 });
  });

  it('judges by the default rule when isFailure throws, so a half-open probe still settles the circuit', async () => {
    let broken = false;
    h = await setup({
      failures: 1,
      openMs: 1_000,
      isFailure: (error) => {
        if (broken) throw new Error('isFailure bug');
        return error.upstreamFault;
      },
    });
    h.upstream.enqueue({ kind: 'status', status: 503 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await h.clock.advanceAsync(1_000);
    broken = true;
    // The probe: its own error, not the predicate's; before, the predicate's throw became the call's
    // error and the probe never settled, so the circuit stayed half-open, refusing every call.
    h.upstream.enqueue({ kind: 'status', status: 503 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open' });
    expect(h.events.of('listener-error')).toEqual([{ id: expect.any(String), event: 'breaker.isFailure', error: new Error('isFailure bug') }]);
    await h.clock.advanceAsync(1_000);
    await expect(h.llm.complete(ask())).resolves.toMatchObject({ object: 'chat.completion' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
  });
});

describe('breaker: failure rate', () => {
  const failureRate = { threshold: 0.5, windowMs: 60_000, minimumCalls: 20 };

  it('opens when half the calls in the window failed, once it holds minimumCalls', async () => {
    h = await setup({ failures: false, failureRate });
    for (let i = 0; i < 19; i++) {
      if (i % 2 === 0) await failTimes(h, 1);
      else await expect(h.llm.complete(ask())).resolves.toBeDefined();
    }
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', window: { calls: 19, failures: 10 } });
    await expect(h.llm.complete(ask())).resolves.toBeDefined(); // 10 of 20: the threshold, reached
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'failure-rate' });
    expect(h.seen).toEqual([{ name: 'circuit-open', id: expect.any(String), key: h.key(), reason: 'failure-rate', failures: 10, openMs: 30_000 }]);
  });

  it('forgets calls older than the window', async () => {
    h = await setup({ failures: false, failureRate });
    await failTimes(h, 15);
    await h.clock.advanceAsync(60_000);
    for (let i = 0; i < 11; i++) await expect(h.llm.complete(ask())).resolves.toBeDefined();
    await failTimes(h, 9);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', window: { calls: 20, failures: 9, rate: 0.45 } });
  });

  it('still opens on consecutive failures unless failures is false', async () => {
    h = await setup({ failures: 5, failureRate });
    await failTimes(h, 5);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', reason: 'consecutive' });
  });
});

describe('breaker: streams', () => {
  it('counts a stream cut or reset mid-way as a failure, once it is read', async () => {
    h = await setup({ failures: 2 });
    h.upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const ctx = await h.llm.run({ ...ask(), stream: true });
    expect(await h.circuit.state(h.key())).toMatchObject({ failures: 0 });
    expect(ctx.chunks).toBeDefined();
    await expect(drain(ctx.chunks as NonNullable<typeof ctx.chunks>)).resolves.toMatchObject({ error: { code: 'STREAM_CUT' } });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 1 });

    h.upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 3 });
    await expect(drain(h.llm.stream(ask()))).resolves.toMatchObject({ error: { code: 'STREAM_CUT' } });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 2 });
  });

  it('counts a stream the upstream accepted as a success, whether its consumer breaks out or reads it to its end', async () => {
    h = await setup({ failures: 2 });
    await failTimes(h, 1);
    for await (const _ of h.llm.stream(ask())) break;
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
    await failTimes(h, 1);
    await expect(drain(h.llm.stream(ask()))).resolves.toMatchObject({ error: undefined });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 0 });
  });

  it('hands a stream to its caller without waiting for a shared store to write its success, and amends it if the stream is cut', async () => {
    // A store whose writes wait while `held`: released only once the first
    // chunk reached the caller (a breaker that waited for the write would never get there).
    const inner = checkedStore();
    let held = true;
    const waiting: Array<() => void> = [];
    const store: Store = {
      get: (key) => inner.get(key),
      set: (key, value, ttlMs) => inner.set(key, value, ttlMs),
      update: (key, update, ttlMs) => (held ? new Promise<void>((release) => waiting.push(release)).then(() => inner.update(key, update, ttlMs)) : inner.update(key, update, ttlMs)),
      delete: (key) => inner.delete(key),
    };
    h = await setup({ failures: 1 }, { store });
    h.upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const stream = h.llm.stream(ask())[Symbol.asyncIterator]();
    await expect(stream.next()).resolves.toMatchObject({ done: false });
    expect(waiting.length).toBeLessThanOrEqual(1); // the success: not written yet
    held = false;
    for (const release of waiting) release();
    await expect(drain({ [Symbol.asyncIterator]: () => stream })).resolves.toMatchObject({ error: { code: 'STREAM_CUT' } });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 1 });
    expect(inner.counts).toMatchObject({ update: 2 }); // the success, then the failure in its place
  });

  it('on an in-process store, counts an accepted stream where it came among the other outcomes, and a cut in its place', async () => {
    h = await setup({ failures: 2 }, { store: memoryStore() });
    await failTimes(h, 1);
    h.upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const stream = h.llm.stream(ask())[Symbol.asyncIterator]();
    await expect(stream.next()).resolves.toMatchObject({ done: false });
    // Its success came between the two failures: no run of two.
    await failTimes(h, 1);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 1 });
    await expect(drain({ [Symbol.asyncIterator]: () => stream })).resolves.toMatchObject({ error: { code: 'STREAM_CUT' } });
    // Cut: failure, failure, failure.
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'open', failures: 2 });
  });

  it('on an in-process store, writes an accepted stream before a cut that came after it', async () => {
    h = await setup({ failures: 2 }, { store: memoryStore() });
    await failTimes(h, 1);
    h.upstream.enqueue({ kind: 'cut', afterChunks: 2 }, { kind: 'ok' });
    const cut = h.llm.stream(ask())[Symbol.asyncIterator]();
    await expect(cut.next()).resolves.toMatchObject({ done: false });
    const whole = h.llm.stream(ask())[Symbol.asyncIterator]();
    await expect(whole.next()).resolves.toMatchObject({ done: false });
    await expect(drain({ [Symbol.asyncIterator]: () => cut })).resolves.toMatchObject({ error: { code: 'STREAM_CUT' } });
    // The second stream's success came between: the cut does not rejoin the first failure's run.
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 1 });
    await expect(drain({ [Symbol.asyncIterator]: () => whole })).resolves.toMatchObject({ error: undefined });
  });

  it('releases the probe slot when a probing stream is cancelled, so the next call probes', async () => {
    h = await setup({ failures: 1, openMs: 1_000 });
    await failTimes(h, 1);
    await h.clock.advanceAsync(1_000);
    const stream = h.llm.stream(ask())[Symbol.asyncIterator]();
    await expect(stream.next()).resolves.toMatchObject({ done: false });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', probes: 1 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'half-open' });
    await stream.return?.();
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', probes: 0 });
    await expect(h.llm.complete(ask())).resolves.toBeDefined();
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
  });

  it('releases the probe slot when the probe fails in a way that does not count', async () => {
    h = await setup({ failures: 1, openMs: 1_000 });
    await failTimes(h, 1);
    await h.clock.advanceAsync(1_000);
    h.upstream.enqueue({ kind: 'status', status: 429 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', probes: 0 });
    await expect(h.llm.complete(ask())).resolves.toBeDefined();
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
  });

  it('closes only after `probes` probes succeeded', async () => {
    h = await setup({ failures: 1, openMs: 1_000, probes: 3 });
    await failTimes(h, 1);
    await h.clock.advanceAsync(1_000);
    h.upstream.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'delay' as const, latencyMs: 100 })));
    const probes = Array.from({ length: 3 }, () => h.llm.complete(ask()));
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'half-open' });
    await h.upstream.waitForRequests(4);
    await h.clock.advanceAsync(100);
    await Promise.all(probes);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
    expect(h.seen.map((e) => e.name)).toEqual(['circuit-open', 'circuit-half-open', 'circuit-close']);
  });
});

describe('breaker: state in the store', () => {
  it('keeps circuits as plain JSON and survives a store that reruns every update', async () => {
    h = await setup({ failures: 2, openMs: 1_000 });
    await failTimes(h, 2);
    const raw = (h.store as CheckedStore).raw(`sluice:breaker:${h.key()}`);
    expect(JSON.parse(raw ?? 'null')).toMatchObject({ state: 'open', failures: 2 });
    await h.clock.advanceAsync(1_000);
    h.upstream.enqueue({ kind: 'delay', latencyMs: 10 });
    const probe = h.llm.complete(ask());
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    await h.upstream.waitForRequests(3);
    await h.clock.advanceAsync(10);
    await probe;
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed' });
    expect(h.seen.map((e) => e.name)).toEqual(['circuit-open', 'circuit-half-open', 'circuit-close']);
  });

  it('costs one store call per call, and none per call failed fast while open', async () => {
    h = await setup({ failures: 1, openMs: 1_000 });
    const store = h.store as CheckedStore;
    await h.llm.complete(ask());
    expect(store.calls).toBe(1);
    await failTimes(h, 1);
    expect(store.calls).toBe(2);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryAfterMs: 1_000 });
    expect(store.calls).toBe(2);
    await h.clock.advanceAsync(1_000);
    // The probe: a read, the update taking its slot, the update recording it.
    await expect(h.llm.complete(ask())).resolves.toBeDefined();
    expect(store.calls).toBe(5);
    await h.llm.complete(ask());
    expect(store.calls).toBe(6);
  });

  it('shares circuits between breakers on one store, each learning of the other’s changes as documented', async () => {
    const store = checkedStore();
    const options = { failures: 2, openMs: 1_000, key: () => 'shared' };
    h = await setup(options, { store });
    const other = await setup(options, { store }); // another process
    {
      await failTimes(h, 2);
      // The other process has seen nothing yet: its call is sent, and its result reads the circuit open.
      await expect(other.llm.complete(ask())).resolves.toBeDefined();
      await expect(other.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', retryAfterMs: 1_000 });
      expect(other.upstream.requests).toHaveLength(1);

      // Seen isolated, a circuit is read at every call: a reset elsewhere frees it at once.
      await h.circuit.isolate('shared');
      await expect(other.circuit.state('shared')).resolves.toMatchObject({ state: 'isolated' });
      await expect(other.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'isolated' });
      await h.circuit.reset('shared');
      await expect(other.llm.complete(ask())).resolves.toBeDefined();
      expect(other.upstream.requests).toHaveLength(2);
    }
    store.assertClean();
  });

  it('uses options.store over the pipeline’s', async () => {
    const store = checkedStore();
    h = await setup({ failures: 1, store });
    await failTimes(h, 1);
    expect(store.raw(`sluice:breaker:${h.key()}`)).toContain('"open"');
    expect(await h.store.get(`sluice:breaker:${h.key()}`)).toBeUndefined();
  });

  it('tells outer middleware the circuit and its state in ctx.state.breaker', async () => {
    const seen: unknown[] = [];
    const outer: Middleware = async function outer(ctx, next) {
      try {
        await next();
      } finally {
        seen.push({ ...ctx.state.breaker });
      }
    };
    h = await setup({ failures: 1 }, { outer });
    await h.llm.complete(ask());
    await failTimes(h, 1);
    await h.llm.complete(ask()).catch(() => {});
    expect(seen).toEqual([
      { key: h.key(), state: 'closed' },
      { key: h.key(), state: 'closed' },
      { key: h.key(), state: 'open' },
    ]);
  });

  it('judges every attempt when a middleware outside calls next() again, as retry does', async () => {
    const retryOnce: Middleware = async function retryOnce(_ctx, next) {
      try {
        await next();
      } catch {
        await next();
      }
    };
    h = await setup({ failures: 3 }, { outer: retryOnce });
    h.upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 2 });
    h.upstream.enqueue({ kind: 'status', status: 503 });
    // The third 503 opens the circuit, so the re-run fails fast without a request.
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(h.upstream.requests).toHaveLength(3);
  });
});

/** A store that fails every call while `down` is true, else passes through to a checked store. */
function flakyStore() {
  const inner = checkedStore();
  let down = false;
  const guard = <T>(run: () => Promise<T>) => (down ? Promise.reject(new Error('store unreachable')) : run());
  const store: Store = {
    get: (key) => guard(() => inner.get(key)),
    set: (key, value, ttlMs) => guard(() => inner.set(key, value, ttlMs)),
    update: (key, update, ttlMs) => guard(() => inner.update(key, update, ttlMs)),
    delete: (key) => guard(() => inner.delete(key)),
  };
  return { store, inner, fail: (value = true) => void (down = value) };
}

describe('breaker: when the store fails', () => {
  it("goes ahead by default ('open'), reporting store-error and never replacing the upstream's error", async () => {
    const flaky = flakyStore();
    h = await setup({ failures: 1, store: flaky.store });
    flaky.fail();
    await failTimes(h, 2); // both sent: nothing could be recorded
    await expect(h.llm.complete(ask())).resolves.toBeDefined();
    expect(h.upstream.requests).toHaveLength(3);
    expect(h.events.of('store-error')).toHaveLength(3); // each result failed to record
    expect(h.events.of('store-error')[0]).toMatchObject({ name: 'breaker', key: h.key(), operation: 'update', policy: 'open' });
    flaky.fail(false);
    await failTimes(h, 1);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it("reads the circuit at every admission with 'closed', and refuses calls it cannot read", async () => {
    const flaky = flakyStore();
    h = await setup({ failures: 1, store: flaky.store, onStoreError: 'closed' });
    await h.llm.complete(ask());
    expect(flaky.inner.counts).toMatchObject({ update: 2 }); // admission and result
    flaky.fail();
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE', retryable: true });
    expect(h.upstream.requests).toHaveLength(1);
    flaky.fail(false);
    await failTimes(h, 1);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
  });

  it("keeps circuits in this process with 'memory' while the store is down", async () => {
    const flaky = flakyStore();
    h = await setup({ failures: 2, store: flaky.store, onStoreError: 'memory' });
    flaky.fail();
    await failTimes(h, 2);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });
    expect(h.upstream.requests).toHaveLength(2);
  });
});

describe('breaker: records expire by state', () => {
  it('forgets a closed circuit after its window, and an open one after its open time plus a margin', async () => {
    h = await setup({ failures: 2, openMs: 1_000, failureRate: { threshold: 0.9, windowMs: 10_000 } });
    const raw = () => (h.store as CheckedStore).raw(`sluice:breaker:${h.key()}`);
    await h.llm.complete(ask());
    expect(raw()).toBeDefined();
    await h.clock.advanceAsync(10_000);
    expect(raw()).toBeUndefined();

    await failTimes(h, 2);
    expect(raw()).toContain('"open"');
    await h.clock.advanceAsync(1_000 + 5 * 60_000 - 1);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'half-open', trips: 1 });
    await h.clock.advanceAsync(1);
    expect(raw()).toBeUndefined();
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', trips: 0 });
  });
});

describe('breaker: manual control and health', () => {
  it('reports a closed circuit as plain JSON before any call', async () => {
    const circuit = breaker({ failureRate: { threshold: 0.5, windowMs: 10_000 } });
    const health = await circuit.state('https://api.example.com/v1|gpt-4.1');
    expect(health).toEqual({
      key: 'https://api.example.com/v1|gpt-4.1',
      state: 'closed',
      failures: 0,
      window: { calls: 0, failures: 0, rate: 0 },
      openedAt: null,
      openMs: null,
      retryAfterMs: 0,
      reason: null,
      trips: 0,
      probes: 0,
    });
    expect(JSON.parse(JSON.stringify(health))).toEqual(health);
  });

  it('holds an isolated circuit open until reset, whatever the time', async () => {
    h = await setup();
    await h.llm.complete(ask());
    const isolated = await h.circuit.isolate(h.key());
    expect(isolated).toMatchObject({ state: 'isolated', reason: 'isolated', retryAfterMs: null, openedAt: h.clock.now() });
    expect(JSON.parse(JSON.stringify(isolated))).toEqual(isolated);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'isolated', retryAfterMs: undefined });
    await h.clock.advanceAsync(24 * 3_600_000);
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'isolated' });
    expect(h.upstream.requests).toHaveLength(1);

    expect(await h.circuit.reset(h.key())).toMatchObject({ state: 'closed', reason: null });
    await expect(h.llm.complete(ask())).resolves.toBeDefined();
    expect(h.seen).toEqual([
      { name: 'circuit-open', key: h.key(), reason: 'isolated', failures: 0, openMs: Infinity },
      { name: 'circuit-close', key: h.key(), reason: 'reset' },
    ]);
  });

  it('isolates a circuit before any call when the breaker has a store of its own', async () => {
    const store = checkedStore();
    const circuit = breaker({ store, key: 'model' });
    await circuit.isolate('model:gpt-4.1');
    h = await setup({}, { circuit });
    await expect(h.llm.complete(ask())).rejects.toMatchObject({ code: 'CIRCUIT_OPEN', state: 'isolated', key: 'model:gpt-4.1' });
    await expect(h.llm.complete(ask('deepseek-v3.2'))).resolves.toBeDefined();
    expect(await h.store.get('sluice:breaker:model:gpt-4.1')).toBeUndefined();
    expect(h.upstream.requests).toHaveLength(1);
    store.assertClean();
  });

  it('closes an open circuit at once on reset, forgetting its failures and trips', async () => {
    h = await setup({ failures: 2 });
    await failTimes(h, 2);
    expect(await h.circuit.reset(h.key())).toMatchObject({ state: 'closed', failures: 0, trips: 0 });
    await expect(h.llm.complete(ask())).resolves.toBeDefined();
    await failTimes(h, 1);
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'closed', failures: 1 });
  });

  it('keeps a circuit isolated when a probe in flight succeeds afterwards', async () => {
    h = await setup({ failures: 1, openMs: 1_000 });
    await failTimes(h, 1);
    await h.clock.advanceAsync(1_000);
    h.upstream.enqueue({ kind: 'delay', latencyMs: 500 });
    const probe = h.llm.complete(ask());
    await h.upstream.waitForRequests(2);
    await h.circuit.isolate(h.key());
    await h.clock.advanceAsync(500);
    await expect(probe).resolves.toBeDefined();
    expect(await h.circuit.state(h.key())).toMatchObject({ state: 'isolated', probes: 0 });
  });
});
