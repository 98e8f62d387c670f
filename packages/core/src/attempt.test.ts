import { describe, expect, it, vi } from 'vitest';
import { Attempt, DeadlineQueue, DeadlineQueues } from './attempt.js';
import { systemClock, type Clock } from './clock.js';
import type { CompletionContext } from './context.js';
import { testPipeline } from '@sluice/testing/kit';
import { onAbort } from './call.js';
import { memoryStore } from './store.js';
import { apiKey, ask, setup } from './test-helpers.js';

/** A clock that moves only when told to, and counts the timers it holds. */
function manualClock() {
  let now = 0;
  // What jump() added: the wall clock reads `now + stepped`, timers run on `now`.
  let stepped = 0;
  let nextId = 0;
  const timers = new Map<number, { at: number; callback: () => void }>();
  const clock: Clock & { advance(ms: number): void; jump(ms: number): void; readonly pending: number } = {
    now: () => now + stepped,
    jump(ms) {
      stepped += ms;
    },
    setTimeout(callback, ms) {
      timers.set(++nextId, { at: now + ms, callback });
      return nextId;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    advance(ms) {
      const until = now + ms;
      for (;;) {
        const due = [...timers].filter(([, timer]) => timer.at <= until).sort((a, b) => a[1].at - b[1].at)[0];
        if (!due) break;
        timers.delete(due[0]);
        now = due[1].at;
        due[1].callback();
      }
      now = until;
    },
    get pending() {
      return timers.size;
    },
  };
  return clock;
}

const call = () => ({ signal: new AbortController().signal }) as unknown as CompletionContext;

/** The system clock, counting the timers set through it that have neither fired nor been cleared. */
function countingClock(): Clock & { readonly live: number } {
  const live = new Set<unknown>();
  return {
    now: () => systemClock.now(),
    setTimeout(callback, ms) {
      const handle: unknown = systemClock.setTimeout(() => {
        live.delete(handle);
        callback();
      }, ms);
      live.add(handle);
      return handle;
    },
    clearTimeout(handle) {
      live.delete(handle);
      systemClock.clearTimeout(handle);
    },
    get live() {
      return live.size;
    },
  };
}

describe('DeadlineQueue', () => {
  it('times each attempt out at its own deadline, under one timer', () => {
    const clock = manualClock();
    const queue = new DeadlineQueue(clock);
    const attempts: Attempt[] = [];
    for (let i = 0; i < 3; i++) {
      attempts.push(new Attempt(call(), queue, 5_000, 60_000));
      clock.advance(1_000);
    }
    // t = 3 000: three attempts wait, on one timer.
    expect(clock.pending).toBe(1);
    clock.advance(1_999);
    expect(attempts.map((attempt) => attempt.reason())).toEqual([undefined, undefined, undefined]);
    clock.advance(1);
    expect(attempts[0]?.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
    expect(attempts[1]?.reason()).toBeUndefined();
    clock.advance(1_000);
    expect(attempts[1]?.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
    expect(attempts[2]?.reason()).toBeUndefined();
    clock.advance(1_000);
    expect(attempts[2]?.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
    // Nothing left to wait for: no timer holds the process.
    expect(clock.pending).toBe(0);
  });

  it('clears its timer once the last attempt is done, and keeps it while any waits', () => {
    const clock = manualClock();
    const queue = new DeadlineQueue(clock);
    const first = new Attempt(call(), queue, 5_000, 60_000);
    clock.advance(1_000);
    const second = new Attempt(call(), queue, 5_000, 60_000);
    first.done();
    expect(clock.pending).toBe(1);
    // The timer armed for the first comes to nothing, and is armed again for the second.
    clock.advance(4_000);
    expect(second.reason()).toBeUndefined();
    expect(clock.pending).toBe(1);
    second.done();
    expect(clock.pending).toBe(0);
    clock.advance(10_000);
    expect(second.reason()).toBeUndefined();
  });

  it('hands an attempt whose headers came to a timer of its own for the attempt limit', () => {
    const clock = manualClock();
    const queue = new DeadlineQueue(clock);
    const attempt = new Attempt(call(), queue, 5_000, 20_000);
    const other = new Attempt(call(), queue, 5_000, 20_000);
    other.done();
    clock.advance(1_000);
    attempt.headersReceived();
    clock.advance(4_000);
    expect(attempt.reason()).toBeUndefined();
    expect(clock.pending).toBe(1);
    clock.advance(14_999);
    expect(attempt.reason()).toBeUndefined();
    clock.advance(1);
    expect(attempt.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'attempt' });
    expect(clock.pending).toBe(0);
  });

  it('lets a stream leave for its idle timer, and an aborted attempt leave at once', () => {
    const clock = manualClock();
    const queue = new DeadlineQueue(clock);
    const streaming = new Attempt(call(), queue, 5_000, 60_000);
    const aborted = new Attempt(call(), queue, 5_000, 60_000);
    streaming.streaming(30_000);
    aborted.abort(new Error('gone'));
    expect(aborted.reason()).toMatchObject({ code: 'ABORTED' });
    // Only the stream's idle timer is left.
    expect(clock.pending).toBe(1);
    clock.advance(29_999);
    expect(streaming.reason()).toBeUndefined();
    clock.advance(1);
    expect(streaming.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'idle' });
    expect(clock.pending).toBe(0);
  });

  it('times attempts out when the clock stepped back while they waited, not an hour later', () => {
    const clock = manualClock();
    const queue = new DeadlineQueue(clock);
    const before = new Attempt(call(), queue, 5_000, 60_000);
    clock.advance(1_000);
    clock.jump(-3_600_000);
    const after = new Attempt(call(), queue, 5_000, 60_000);
    // Before, the queue's timer found the first due an hour on and waited for it, the second behind it.
    clock.advance(5_000);
    expect(after.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
    // The first starts its limit again from the clock's new time: late by at most that limit.
    expect(before.reason()).toBeUndefined();
    clock.advance(4_000);
    expect(before.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'first-byte' });
    expect(clock.pending).toBe(0);

    const streaming = new Attempt(call(), queue, 5_000, 60_000);
    streaming.streaming(30_000);
    clock.advance(10_000);
    clock.jump(-3_600_000);
    clock.advance(20_000);
    expect(streaming.reason()).toBeUndefined();
    clock.advance(30_000);
    expect(streaming.reason()).toMatchObject({ code: 'TIMEOUT', phase: 'idle' });
    expect(clock.pending).toBe(0);
  });

  it('keeps one queue per clock', () => {
    const queues = new DeadlineQueues();
    const fake = manualClock();
    expect(queues.of(systemClock)).toBe(queues.of(systemClock));
    expect(queues.of(fake)).not.toBe(queues.of(systemClock));
    expect(queues.of(fake).clock).toBe(fake);
  });
});

describe('openAICompatible: attempts started apart time out apart (fake time)', () => {
  it('fails each hung call at its own first-byte deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { upstream, llm } = await setup({ transport: { firstByteTimeoutMs: 5_000 } });
      const settled: string[] = [];
      const calls: Array<Promise<unknown>> = [];
      for (let i = 0; i < 3; i++) {
        upstream.enqueue({ kind: 'hang' });
        calls.push(
          llm.complete(ask()).then(
            () => settled.push(`${i} answered`),
            (error: { code: string; phase?: string }) => settled.push(`${i} ${error.code} ${error.phase}`),
          ),
        );
        await upstream.waitForRequests(i + 1);
        await vi.advanceTimersByTimeAsync(2_000);
      }
      // t = 6 000: the first (sent at 0) has timed out, the others (2 000 and 4 000) wait.
      expect(settled).toEqual(['0 TIMEOUT first-byte']);
      await vi.advanceTimersByTimeAsync(1_000);
      expect(settled).toEqual(['0 TIMEOUT first-byte', '1 TIMEOUT first-byte']);
      await vi.advanceTimersByTimeAsync(2_000);
      expect(settled).toEqual(['0 TIMEOUT first-byte', '1 TIMEOUT first-byte', '2 TIMEOUT first-byte']);
      await Promise.all(calls);
    } finally {
      vi.useRealTimers();
    }
  });

  it('still times a call out, and still hears its caller’s abort, when a middleware’s abort listener throws', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    try {
      const { upstream, llm } = await setup();
      llm.use(function watcher(ctx, next) {
        onAbort(ctx, () => {
          throw new Error('listener bug');
        });
        return next();
      });
      const reported: unknown[] = [];
      llm.events.on('listener-error', (event) => reported.push(event));
      upstream.enqueue({ kind: 'hang' });
      upstream.enqueue({ kind: 'hang' });
      const timedOut = llm.complete(ask(), { timeoutMs: 1_000 }).catch((error: unknown) => error);
      await upstream.waitForRequests(1);
      await vi.advanceTimersByTimeAsync(1_000);
      // Before, the throw ended the abort's round: the attempt never heard, and the call waited out the transport's limits.
      await expect(timedOut).resolves.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
      const controller = new AbortController();
      const aborted = llm.complete(ask(), { signal: controller.signal }).catch((error: unknown) => error);
      await upstream.waitForRequests(2);
      controller.abort();
      await expect(aborted).resolves.toMatchObject({ code: 'ABORTED' });
      expect(reported).toEqual([
        { id: expect.any(String), event: 'abort', error: new Error('listener bug') },
        { id: expect.any(String), event: 'abort', error: new Error('listener bug') },
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('leaves no timer behind once its calls are answered, so a one-shot script can exit', async () => {
    // Counted on the pipeline's own clock: the process's count also moves with undici's keep-alive timers.
    const clock = countingClock();
    const { llm } = await testPipeline({ clock, store: memoryStore(), transport: { apiKey } });
    const calls = Promise.all([llm.complete(ask()), llm.complete(ask())]);
    // While they wait, their deadlines hold the process: one timer for both.
    expect(clock.live).toBe(1);
    await calls;
    expect(clock.live).toBe(0);
  });

  it('lets callers abort waiting calls, and one aborted before it was sent, leaving no timer', async () => {
    const clock = countingClock();
    const { upstream, llm } = await testPipeline({ clock, store: memoryStore(), transport: { apiKey } });
    const early = new AbortController();
    early.abort();
    await expect(llm.complete(ask(), { signal: early.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    const controllers = [new AbortController(), new AbortController(), new AbortController()];
    for (let i = 0; i < controllers.length; i++) upstream.enqueue({ kind: 'hang' });
    const calls = controllers.map((controller) => llm.complete(ask(), { signal: controller.signal }));
    await upstream.waitForRequests(controllers.length);
    for (const controller of controllers) controller.abort();
    for (const call of calls) await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
    expect(clock.live).toBe(0);
    // The pool is sound after it: the next call is answered.
    await expect(llm.complete(ask())).resolves.toBeDefined();
  });
});
