import { DeadlineError, type Middleware, SluiceError, type SluiceState, TimeoutError } from '@sluice/core';
import { chat, closeTestPipelines, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { constantBackoff } from './backoff.js';
import { RetryError } from './errors.js';
import { retry, type RetryState } from './retry.js';

// Every pipeline runs on the kit's manual clock, which starts on a whole
// second, so an HTTP-date Retry-After converts exactly.
afterEach(closeTestPipelines);

/** A pipeline of `middleware` against a fresh mock upstream. */
const start = (middleware: Middleware[], upstream = {}) => testPipeline({ middleware, upstream });

const half = () => 0.5;

/** Records what `retry` left in ctx.state, as a middleware outside it sees it. */
function watchState(into: { state?: RetryState }): Middleware {
  return async function watch(ctx, next) {
    try {
      await next();
    } finally {
      into.state = (ctx.state as SluiceState).retry;
    }
  };
}

describe('retry: what is retried', () => {
  it('retries a 503, a 429 and a connection reset, then succeeds', async () => {
    const { upstream, llm, clock, events } = await start([retry({ attempts: 4, random: half })]);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 429 }, { kind: 'reset' });

    const reply = await clock.run(llm.complete(chat('hi there')));

    expect(reply.choices[0]?.message.content).toContain('hi there');
    expect(upstream.requests).toHaveLength(4);
    expect(events.of('retry')).toEqual([
      { id: expect.any(String), model: 'gpt-4.1', attempt: 2, delayMs: 500, code: 'SERVER_ERROR' },
      { id: expect.any(String), model: 'gpt-4.1', attempt: 3, delayMs: 1_000, code: 'RATE_LIMITED' },
      { id: expect.any(String), model: 'gpt-4.1', attempt: 4, delayMs: 2_000, code: 'CONNECTION' },
    ]);
  });

  it.each([
    ['BAD_REQUEST', 400, undefined],
    ['AUTHENTICATION', 401, undefined],
    ['PERMISSION_DENIED', 403, undefined],
    ['UNPROCESSABLE_ENTITY', 422, undefined],
  ])('never retries the final %s (%i), even when retryOn and x-should-retry say yes', async (expected, status, code) => {
    const retryOn = vi.fn(() => true);
    const { upstream, llm } = await start([retry({ retryOn })]);
    upstream.enqueue({ kind: 'status', status, code, headers: { 'x-should-retry': 'true' } });

    await expect(llm.complete(chat())).rejects.toMatchObject({ code: expected, status, final: true });
    expect(upstream.requests).toHaveLength(1);
    expect(retryOn).not.toHaveBeenCalled();
  });

  it.each([
    ['CONTEXT_LENGTH_EXCEEDED', 400, 'context_length_exceeded'],
    ['NOT_FOUND', 404, undefined],
  ])('does not retry %s (%i) by default, but does when retryOn says so: it is not final', async (expected, status, code) => {
    const { upstream, llm, clock } = await start([retry({ random: half, retryOn: (error) => error.code === expected })]);
    upstream.enqueue({ kind: 'status', status, code });
    await expect(clock.run(llm.complete(chat()))).resolves.toMatchObject({ object: 'chat.completion' });
    expect(upstream.requests).toHaveLength(2);

    const plain = await start([retry()]);
    plain.upstream.enqueue({ kind: 'status', status, code });
    await expect(plain.llm.complete(chat())).rejects.toMatchObject({ code: expected, retryable: false });
    expect(plain.upstream.requests).toHaveLength(1);
  });

  it.each([
    ['an abort', () => new SluiceError('ABORTED', 'aborted', { retryable: true, final: true })],
    ['a passed deadline', () => new DeadlineError(1_000)],
    ['a spent cost budget', () => new SluiceError('BUDGET_EXCEEDED', 'spent', { retryable: true, final: true })],
    ['any error marked final', () => new SluiceError('SOMETHING_NEW', 'no', { retryable: true, final: true })],
  ])('never retries %s, even when it claims to be retryable and retryOn says yes', async (_, make) => {
    const error = make();
    const inner = vi.fn(async () => {
      throw error;
    });
    const { llm } = await start([retry({ retryOn: () => true }), inner]);
    await expect(llm.complete(chat())).rejects.toBe(error);
    expect(inner).toHaveBeenCalledTimes(1);
  });

  it('retries a per-attempt timeout, unlike a passed deadline', async () => {
    let calls = 0;
    const { upstream, llm, clock } = await start([
      retry({ random: half }),
      async function slowOnce(_ctx, next) {
        if (++calls === 1) throw new TimeoutError('attempt', 60_000);
        await next();
      },
    ]);
    await clock.run(llm.complete(chat()));
    expect(calls).toBe(2);
    expect(upstream.requests).toHaveLength(1);
  });

  it('follows the x-should-retry header that core applies to the retryable flag', async () => {
    const { upstream, llm, clock } = await start([retry({ random: half })]);
    upstream.enqueue({ kind: 'status', status: 503, headers: { 'x-should-retry': 'false' } });
    await expect(llm.complete(chat())).rejects.toMatchObject({ code: 'SERVER_ERROR', retryable: false });
    expect(upstream.requests).toHaveLength(1);

    upstream.reset();
    upstream.enqueue({ kind: 'status', status: 413, headers: { 'x-should-retry': 'true' } });
    await clock.run(llm.complete(chat()));
    expect(upstream.requests).toHaveLength(2);
  });

  it('lets retryOn decide instead of the retryable flag, with the failed attempt number', async () => {
    const retryOn = vi.fn((error: SluiceError, _attempt: number) => error.code !== 'RATE_LIMITED');
    const { upstream, llm, clock } = await start([retry({ retryOn, random: half })]);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 429 });

    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'RATE_LIMITED' });
    expect(upstream.requests).toHaveLength(2);
    expect(retryOn.mock.calls.map(([error, attempt]) => [error.code, attempt])).toEqual([
      ['SERVER_ERROR', 1],
      ['RATE_LIMITED', 2],
    ]);
  });

  it('throws a later non-retryable error as it is, not as a RetryError', async () => {
    const seen: { state?: RetryState } = {};
    const { upstream, llm, clock } = await start([watchState(seen), retry({ random: half })]);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 401 });

    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'AUTHENTICATION', status: 401 });
    expect(upstream.requests).toHaveLength(2);
    expect(seen.state).toMatchObject({ attempt: 2, stopped: 'not-retryable' });
  });

  it('never sends the API key in an event or error', async () => {
    const { upstream, llm, clock, events } = await start([retry({ attempts: 2, random: half })]);
    upstream.enqueue({ kind: 'status', status: 503, message: 'bad key sk-test' }, { kind: 'status', status: 503 });
    const error = await clock.run(llm.complete(chat())).catch((caught: unknown) => caught);
    expect(JSON.stringify(events.all)).not.toContain('sk-test');
    expect(String((error as Error).message)).not.toContain('sk-test');
    expect(String((error as RetryError).attempts[0]?.error.message)).not.toContain('sk-test');
  });
});

describe('retry: when it retries', () => {
  it.each([
    ['retry-after seconds', () => ({ 'retry-after': '3' }), 3_000],
    ['retry-after as an HTTP date', (now: number) => ({ 'retry-after': new Date(now + 4_000).toUTCString() }), 4_000],
    ['retry-after-ms, even when shorter than the backoff', () => ({ 'retry-after-ms': '120' }), 120],
  ])('waits the server’s %s and sends nothing before', async (_, headers, delayMs) => {
    const { upstream, llm, clock, events, attempts } = await start([retry({ random: half })]);
    upstream.enqueue({ kind: 'status', status: 429, headers: headers(clock.now()) });
    const retried = events.next('retry');

    const reply = llm.complete(chat());
    expect(await retried).toMatchObject({ attempt: 2, delayMs, code: 'RATE_LIMITED' });
    await clock.advanceAsync(delayMs - 1);
    expect(attempts).toHaveLength(1);
    expect(upstream.requests).toHaveLength(1);

    await clock.advanceAsync(1);
    await expect(reply).resolves.toMatchObject({ object: 'chat.completion' });
    expect(upstream.requests).toHaveLength(2);
    expect(upstream.requests[1]!.at - upstream.requests[0]!.at).toBe(delayMs);
  });

  it('fails at once with the upstream error when the server asks for more than maxRetryAfterMs', async () => {
    const seen: { state?: RetryState } = {};
    const { upstream, llm, events } = await start([watchState(seen), retry({ maxRetryAfterMs: 30_000 })]);
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '31' } });

    // No time is advanced: a sleep would never end.
    await expect(llm.complete(chat())).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 31_000 });
    expect(upstream.requests).toHaveLength(1);
    expect(events.of('retry-stop')).toEqual([
      {
        id: expect.any(String),
        model: 'gpt-4.1',
        reason: 'max-retry-after',
        attempts: 1,
        code: 'RATE_LIMITED',
        codes: ['RATE_LIMITED'],
        delayMs: 31_000,
      },
    ]);
    expect(seen.state?.stopped).toBe('max-retry-after');
  });

  it('honours a Retry-After up to 60 s by default', async () => {
    const { upstream, llm, clock, events } = await start([retry()]);
    upstream.enqueue({ kind: 'status', status: 503, headers: { 'retry-after': '60' } });
    const retried = events.next('retry');
    const reply = llm.complete(chat());
    expect(await retried).toMatchObject({ delayMs: 60_000 });
    await clock.advanceAsync(60_000);
    await expect(reply).resolves.toBeDefined();

    upstream.enqueue({ kind: 'status', status: 503, headers: { 'retry-after': '61' } });
    await expect(llm.complete(chat())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
  });

  it('takes the wait from any error that carries retryAfterMs, knowing no other package', async () => {
    let calls = 0;
    const { llm, clock, events } = await start([
      retry(),
      async function busyOnce(_ctx, next) {
        if (++calls === 1) throw new SluiceError('LIMIT_REJECTED', 'busy', { retryable: true, retryAfterMs: 750 });
        await next();
      },
    ]);
    await clock.run(llm.complete(chat()));
    expect(events.of('retry')).toMatchObject([{ delayMs: 750, code: 'LIMIT_REJECTED' }]);
  });

  it('fails at once with the upstream error when the wait would pass the deadline', async () => {
    const seen: { state?: RetryState } = {};
    const { upstream, llm, events } = await start([watchState(seen), retry()]);
    upstream.enqueue({ kind: 'status', status: 503, headers: { 'retry-after': '10' } });

    await expect(llm.complete(chat(), { timeoutMs: 5_000 })).rejects.toMatchObject({ code: 'SERVER_ERROR', status: 503 });
    expect(upstream.requests).toHaveLength(1);
    expect(events.of('retry-stop')).toMatchObject([{ reason: 'deadline', delayMs: 10_000, attempts: 1 }]);
    expect(seen.state?.stopped).toBe('deadline');
  });

  it('keeps one deadline across attempts and waits', async () => {
    const { upstream, llm, clock, events } = await start([retry({ attempts: 10, backoff: constantBackoff(1_000) })], {
      faults: [{ probability: 1, fault: { kind: 'status', status: 503 } }],
    });
    const first = events.next('retry');
    const reply = llm.complete(chat(), { timeoutMs: 2_500 });
    // Handled from the start: on a busy machine it may fail while the clock is still advancing.
    const failed = expect(reply).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await first;
    const second = events.next('retry');
    await clock.advanceAsync(1_000);
    await second;
    await clock.advanceAsync(1_000);

    // At 2 s the third attempt fails with 500 ms left: a 1 s wait cannot fit.
    await failed;
    expect(upstream.requests).toHaveLength(3);
  });

  it('stops sleeping the instant the caller aborts, and sends nothing more', async () => {
    const seen: { state?: RetryState } = {};
    const { upstream, llm, clock, events, attempts } = await start([watchState(seen), retry()]);
    upstream.enqueue({ kind: 'status', status: 503 });
    const controller = new AbortController();
    const retried = events.next('retry');

    const reply = llm.complete(chat(), { signal: controller.signal });
    await retried;
    controller.abort();
    await expect(reply).rejects.toMatchObject({ code: 'ABORTED' });

    await clock.advanceAsync(60_000);
    expect(attempts).toHaveLength(1);
    expect(upstream.requests).toHaveLength(1);
    expect(seen.state?.stopped).toBe('aborted');
  });

  it('draws the jitter from the injected random', async () => {
    const sequence = [0.1, 0.9, 0.3];
    const { upstream, llm, clock, events } = await start([retry({ attempts: 4, random: () => sequence.shift() ?? 0 })]);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    await clock.run(llm.complete(chat()));
    expect(events.of('retry').map((event) => event.delayMs)).toEqual([100, 1_800, 1_200]);
  });

  it('uses backoff options given to retry', async () => {
    const { upstream, llm, clock, events } = await start([retry({ backoff: { baseMs: 200, maxMs: 300, jitter: 'none' } })]);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    await clock.run(llm.complete(chat()));
    expect(events.of('retry').map((event) => event.delayMs)).toEqual([200, 300]);
  });
});

describe('retry: when attempts run out', () => {
  it('throws a RetryError that keeps every attempt, its code and the wait before it', async () => {
    const { upstream, llm, clock, events } = await start([retry({ random: half })]);
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 }, { kind: 'reset' });

    const error = await clock.run(llm.complete(chat())).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(RetryError);
    expect(error).toBeInstanceOf(SluiceError);
    const retryError = error as RetryError;
    expect(retryError).toMatchObject({
      name: 'RetryError',
      code: 'RETRY_EXHAUSTED',
      retryable: false,
      message: '3 attempts failed: SERVER_ERROR, SERVER_ERROR, CONNECTION',
    });
    expect(retryError.attempts.map(({ attempt, delayMs, code }) => ({ attempt, delayMs, code }))).toEqual([
      { attempt: 1, delayMs: 0, code: 'SERVER_ERROR' },
      { attempt: 2, delayMs: 500, code: 'SERVER_ERROR' },
      { attempt: 3, delayMs: 1_000, code: 'CONNECTION' },
    ]);
    expect(retryError.attempts[0]?.error).toMatchObject({ code: 'SERVER_ERROR', status: 503 });
    expect(retryError.lastError).toBe(retryError.attempts[2]?.error);
    expect(retryError.cause).toBe(retryError.lastError);
    expect(upstream.requests).toHaveLength(3);
    expect(events.of('retry-stop')).toEqual([
      {
        id: expect.any(String),
        model: 'gpt-4.1',
        reason: 'attempts',
        attempts: 3,
        code: 'CONNECTION',
        codes: ['SERVER_ERROR', 'SERVER_ERROR', 'CONNECTION'],
        delayMs: undefined,
      },
    ]);
  });

  it('passes errors through unchanged with attempts: 1', async () => {
    const { upstream, llm, events } = await start([retry({ attempts: 1 })]);
    upstream.enqueue({ kind: 'status', status: 503 });
    await expect(llm.complete(chat())).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    expect(upstream.requests).toHaveLength(1);
    expect(events.of('retry-stop')).toEqual([]);
  });

  it('shows its state to the middleware outside it', async () => {
    const seen: { state?: RetryState } = {};
    const { upstream, llm, clock } = await start([watchState(seen), retry({ random: half })]);
    upstream.enqueue({ kind: 'status', status: 502 });
    await clock.run(llm.complete(chat()));
    expect(seen.state).toEqual({
      attempt: 2,
      attempts: [{ attempt: 1, delayMs: 0, code: 'SERVER_ERROR', error: expect.objectContaining({ status: 502 }) }],
    });
  });
});

describe('retry: options', () => {
  it.each([
    [{ attempts: 0 }, 'retry.attempts'],
    [{ attempts: 1.5 }, 'retry.attempts'],
    [{ maxRetryAfterMs: -1 }, 'retry.maxRetryAfterMs'],
    [{ retryOn: 'always' }, 'retry.retryOn'],
    [{ random: 0.5 }, 'retry.random'],
    [{ backoff: 1_000 }, 'retry.backoff'],
    [{ backoff: { maxMs: -1 } }, 'retry.backoff.maxMs'],
    [{ backoff: { capMs: 1_000 } }, 'retry.backoff.capMs'],
    [{ backoff: { jitter: 'half' } }, 'retry.backoff.jitter'],
    [{ budget: { ratio: -1 } }, 'retry.budget.ratio'],
    [{ budget: { minPerSecond: 20, capacity: 10 } }, 'retry.budget.capacity'],
    [{ budget: { maxTokens: 100 } }, 'retry.budget.maxTokens'],
    [{ attemps: 3 }, 'retry.attemps'],
  ])('rejects %j naming %s', (options, field) => {
    expect(() => retry(options as never)).toThrow(expect.objectContaining({ code: 'VALIDATION', field }));
  });

  it('suggests the option a misspelt key meant', () => {
    expect(() => retry({ attemps: 3 } as never)).toThrow(/retry\.attemps: is not an option; did you mean attempts\?/);
    expect(() => retry({ backoff: { capMs: 1_000 } } as never)).toThrow(/did you mean maxMs\?/);
  });

  it("names the option that stands for another library's: openai-node's maxRetries, p-retry's retries, a delay", () => {
    expect(() => retry({ maxRetries: 2 } as never)).toThrow("retry.maxRetries: is not an option; use attempts, which counts the first try too: openai-node's maxRetries: 2 is attempts: 3");
    expect(() => retry({ retries: 2 } as never)).toThrow(/retry\.retries: is not an option; use attempts/);
    expect(() => retry({ timeoutMs: 5_000 } as never)).toThrow(/retry has no timeout of its own/);
    expect(() => retry({ initialDelayMs: 100 } as never)).toThrow(/use backoff: \{ baseMs \}/);
    expect(() => retry({ backoff: { initialDelayMs: 100 } } as never)).toThrow('retry.backoff.initialDelayMs: is not an option; use baseMs');
  });

  it('tells a caller who passed retry uncalled, use(retry), to call it', async () => {
    const { llm, upstream } = await testPipeline({ middleware: retry as never });
    await expect(llm.complete(chat())).rejects.toMatchObject({
      code: 'VALIDATION',
      field: 'retry',
      message: expect.stringContaining('use(retry())'),
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('rejects a backoff that returns something other than a wait', async () => {
    const { upstream, llm } = await start([retry({ backoff: () => Number.NaN })]);
    upstream.enqueue({ kind: 'status', status: 503 });
    await expect(llm.complete(chat())).rejects.toMatchObject({ code: 'VALIDATION', field: 'retry.backoff' });
    // A string says it is one: "returned 10" read as a number that should have been accepted.
    const stringy = await start([retry({ backoff: (() => '10') as never })]);
    stringy.upstream.enqueue({ kind: 'status', status: 503 });
    await expect(stringy.llm.complete(chat())).rejects.toMatchObject({ message: 'retry.backoff: returned "10"; a wait must be a finite number of ms, 0 or more' });
  });
});
