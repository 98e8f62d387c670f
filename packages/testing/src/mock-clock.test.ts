import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockUpstream, type MockClock, type MockUpstream } from './index.js';
import { chat, post, sseEvents } from './test-client.js';

/** Tracks whether a promise has settled, without waiting for it. */
function track<T>(promise: Promise<T>): { readonly settled: boolean; promise: Promise<T> } {
  const state = { settled: false, promise };
  promise.then(
    () => (state.settled = true),
    () => (state.settled = true),
  );
  return state;
}

/** A hand-driven clock: timers run only when the test says so. */
function manualClock(now = 1_700_000_000_000) {
  const timers = new Map<number, { callback: () => void; ms: number }>();
  let next = 0;
  const clock: MockClock & { timers: typeof timers; runAll(): void } = {
    timers,
    now: () => now,
    setTimeout(callback, ms) {
      next += 1;
      timers.set(next, { callback, ms });
      return next;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    runAll() {
      for (const [handle, timer] of [...timers]) {
        timers.delete(handle);
        timer.callback();
      }
    },
  };
  return clock;
}

describe('delays on the default clock under fake timers', () => {
  let upstream: MockUpstream | undefined;
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
  });
  afterEach(async () => {
    await upstream?.close();
    vi.useRealTimers();
  });

  it('holds a delay fault for its latencyMs, while other requests go through', async () => {
    upstream = await mockUpstream();
    upstream.enqueue({ kind: 'delay', latencyMs: 30_000 });
    const slow = track(post(upstream, chat()));
    await upstream.waitForRequests(1);

    await vi.advanceTimersByTimeAsync(29_999);
    // A full round trip on another connection lets any early answer arrive first.
    expect((await post(upstream, chat())).status).toBe(200);
    expect(slow.settled).toBe(false);

    await vi.advanceTimersByTimeAsync(1);
    const res = await slow.promise;
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ object: 'chat.completion' });
  });

  it('applies latencyMs before every completion response, faults included', async () => {
    upstream = await mockUpstream({ latencyMs: 1_000 });
    upstream.enqueue({ kind: 'status', status: 503 });
    const failing = track(post(upstream, chat()));
    await upstream.waitForRequests(1);
    await vi.advanceTimersByTimeAsync(999);
    const other = track(post(upstream, chat()));
    await upstream.waitForRequests(2);
    expect(failing.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect((await failing.promise).status).toBe(503);
    expect(other.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(999);
    expect((await other.promise).status).toBe(200);
  });

  it('spaces stream events by chunkDelayMs', async () => {
    upstream = await mockUpstream({ chunkDelayMs: 1_000, reply: 'a b' });
    const res = await post(upstream, chat('x', { stream: true }));
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    const reads: string[] = [decoder.decode((await reader.read()).value)];
    // role, 'a ', 'b', finish, [DONE]: four gaps of a second each.
    for (let gap = 0; gap < 4; gap++) {
      const next = reader.read();
      await vi.advanceTimersByTimeAsync(1_000);
      reads.push(decoder.decode((await next).value));
    }
    expect(reads.map((read) => sseEvents(read).length)).toEqual([1, 1, 1, 1, 1]);
    expect(reads.at(-1)).toBe('data: [DONE]\n\n');
    expect((await reader.read()).done).toBe(true);
  });

  it('makes a stream slow with a delay fault chunkDelayMs of 30 s', async () => {
    upstream = await mockUpstream({ reply: 'slow' });
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 30_000 });
    const res = await post(upstream, chat('x', { stream: true }));
    const body = track(res.text());
    await vi.advanceTimersByTimeAsync(29_999 * 3);
    expect((await post(upstream, chat())).status).toBe(200);
    expect(body.settled).toBe(false);
    await vi.advanceTimersByTimeAsync(3);
    expect(sseEvents(await body.promise).map((event) => event.data).at(-1)).toBe('[DONE]');
  });
});

describe('an injected clock', () => {
  it('schedules every delay and dates every request', async () => {
    const clock = manualClock();
    const upstream = await mockUpstream({ clock, latencyMs: 250 });
    try {
      const pending = post(upstream, chat());
      await upstream.waitForRequests(1);
      expect([...clock.timers.values()].map((timer) => timer.ms)).toEqual([250]);
      clock.runAll();
      const completion = (await (await pending).json()) as { created: number };
      expect(completion.created).toBe(1_700_000_000);
      expect(upstream.requests[0]?.at).toBe(1_700_000_000_000);
    } finally {
      await upstream.close();
    }
  });

  it('cancels a pending delay when the client aborts', async () => {
    const clock = manualClock();
    const upstream = await mockUpstream({ clock, latencyMs: 60_000 });
    try {
      const controller = new AbortController();
      const pending = post(upstream, chat(), { signal: controller.signal });
      await upstream.waitForRequests(1);
      expect(clock.timers.size).toBe(1);
      controller.abort();
      await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
      await vi.waitUntil(() => clock.timers.size === 0, { interval: 0 });
    } finally {
      await upstream.close();
    }
  });

  it('cancels pending delays on close', async () => {
    const clock = manualClock();
    const upstream = await mockUpstream({ clock, latencyMs: 60_000 });
    const pending = post(upstream, chat());
    await upstream.waitForRequests(1);
    await upstream.close();
    await expect(pending).rejects.toThrow();
    expect(clock.timers.size).toBe(0);
  });
});
