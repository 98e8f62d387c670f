import { setMaxListeners } from 'node:events';
import { type Clock, createEmitter, memoryStore, type Store, systemClock } from '@sluice/core';
import { keyedState } from '@sluice/core/kit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { maxEntries, type SlidingWindow } from './bucket.js';
import { type Caller, Limiter } from './limiter.js';
import type { WindowState } from './window-state.js';
import type { LimiterConfig } from './options.js';

beforeAll(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterAll(() => {
  vi.useRealTimers();
});

const windowOf = (limit: number, windowMs: number): SlidingWindow => ({ limit, windowMs });

function caller(store: Store = memoryStore()): Caller {
  const { signal } = new AbortController();
  // One caller stands for many calls here, each waiter watching its signal.
  setMaxListeners(0, signal);
  return { id: 'call', clock: systemClock, events: createEmitter(), signal, store, remainingMs: () => Infinity };
}

/**
 * `inner`, answering `ticks` microtask turns late, as a store across a
 * network would: each update still applies in the order it was sent.
 */
function lateStore(inner: Store, ticks: number): Store {
  const late = async <T>(value: T): Promise<T> => {
    for (let i = 0; i < ticks; i++) await Promise.resolve();
    return value;
  };
  return {
    get: <T>(key: string) => inner.get<T>(key).then(late),
    set: (key, value, ttlMs) => inner.set(key, value, ttlMs).then(late),
    update: (key, update, ttlMs) => inner.update(key, update, ttlMs).then(late),
    delete: (key) => inner.delete(key).then(late),
  };
}

const config = (overrides: Partial<LimiterConfig>): LimiterConfig => ({
  requests: undefined,
  tokens: undefined,
  concurrency: undefined,
  mode: 'wait',
  maxWaitMs: Infinity,
  maxQueue: Infinity,
  state: keyedState({ name: 'ratelimit', defaultKey: 'global', field: 'rateLimit.key' }),
  prefix: 'test',
  maxPauseMs: 600_000,
  ...overrides,
});

/** The most admitted (by `amount`) in any window [t, t + W). */
function worstWindow(admitted: ReadonlyArray<{ at: number; amount: number }>, windowMs: number): number {
  let worst = 0;
  for (const { at: start } of admitted) {
    let sum = 0;
    for (const { at, amount } of admitted) if (at >= start && at < start + windowMs) sum += amount;
    worst = Math.max(worst, sum);
  }
  return worst;
}

describe('Limiter', () => {
  it('never admits more than either limit in any window, nor more than the concurrency in flight, and keeps arrival order', async () => {
    const scenario = fc.record({
      requests: fc.record({ limit: fc.integer({ min: 1, max: 20 }), windowMs: fc.integer({ min: 10, max: 2_000 }) }),
      tokens: fc.record({ limit: fc.integer({ min: 1, max: 1_000 }), windowMs: fc.integer({ min: 10, max: 2_000 }) }),
      concurrency: fc.option(fc.integer({ min: 1, max: 5 }), { nil: undefined }),
      // A store answering late keeps fast-path admissions with the store while others arrive.
      storeTicks: fc.nat({ max: 4 }),
      arrivals: fc.array(fc.record({ gap: fc.nat({ max: 500 }), share: fc.double({ min: 0, max: 1, noNaN: true }), holdMs: fc.nat({ max: 300 }) }), { minLength: 1, maxLength: 40 }),
    });
    await fc.assert(
      fc.asyncProperty(scenario, async ({ requests, tokens, concurrency, storeTicks, arrivals }) => {
        vi.clearAllTimers();
        vi.setSystemTime(0);
        const limiter = new Limiter(config({ requests, tokens, concurrency }));
        const who = caller(lateStore(memoryStore(), storeTicks));
        const admitted: Array<{ index: number; at: number; cost: number }> = [];
        let inFlight = 0;
        let mostInFlight = 0;
        let arrival = 0;
        arrivals.forEach(({ gap, share, holdMs }, index) => {
          arrival += gap;
          const cost = Math.max(1, Math.ceil(tokens.limit * share));
          setTimeout(() => {
            void limiter.acquire(who, 'key', cost).then((ticket) => {
              admitted.push({ index, at: Date.now(), cost });
              mostInFlight = Math.max(mostInFlight, ++inFlight);
              setTimeout(() => {
                inFlight--;
                void limiter.finish(ticket, who, { usedTokens: cost });
              }, holdMs);
            });
          }, arrival);
        });
        await vi.runAllTimersAsync();

        expect(admitted.map((entry) => entry.index)).toEqual(arrivals.map((_, index) => index));
        expect(worstWindow(admitted.map(({ at }) => ({ at, amount: 1 })), requests.windowMs)).toBeLessThanOrEqual(requests.limit);
        expect(worstWindow(admitted.map(({ at, cost }) => ({ at, amount: cost })), tokens.windowMs)).toBeLessThanOrEqual(tokens.limit);
        if (concurrency !== undefined) expect(mostInFlight).toBeLessThanOrEqual(concurrency);
      }),
      { numRuns: 150 },
    );
  });

  it('keeps in the store only the admissions still inside the window, as plain JSON, and forgets an idle key', async () => {
    vi.setSystemTime(0);
    const store = memoryStore();
    const limiter = new Limiter(config({ requests: windowOf(1_000_000, 60_000), tokens: windowOf(10_000_000, 60_000) }));
    const who = caller(store);
    for (let i = 0; i < 5_000; i++) {
      const ticket = await limiter.acquire(who, 'key', 50);
      await limiter.finish(ticket, who, { usedTokens: 20 });
      if (i % 10 === 9) vi.advanceTimersByTime(100);
    }
    const state = await store.get<WindowState>('sluice:ratelimit:test:key');
    expect(JSON.parse(JSON.stringify(state))).toEqual(state);
    // 500 distinct milliseconds over 50 s, kept in a bounded log (bucket.ts): the totals stay exact.
    expect(state?.requests.flat).toHaveLength(maxEntries * 2);
    expect(state?.tokens.flat.length).toBeLessThanOrEqual(maxEntries * 2);
    expect(state?.requests.total).toBe(5_000);
    expect(state?.tokens.total).toBe(5_000 * 20);
    vi.advanceTimersByTime(60_000);
    expect(await store.get('sluice:ratelimit:test:key')).toBeUndefined();
  });

  it('never unrefs a timer a waiting request depends on, so a script waiting for its turn stays alive', async () => {
    vi.setSystemTime(0);
    const unrefs: number[] = [];
    let armed = 0;
    // Handles that record an unref, as Node's would obey it.
    const clock: Clock = {
      now: () => Date.now(),
      setTimeout: (callback, ms) => {
        armed++;
        return { timer: setTimeout(callback, ms), unref: () => unrefs.push(ms), ref: () => {}, hasRef: () => true };
      },
      clearTimeout: (handle) => clearTimeout((handle as { timer: ReturnType<typeof setTimeout> }).timer),
    };
    const limiter = new Limiter(config({ requests: windowOf(1, 1_000), maxWaitMs: 5_000 }));
    const who = { ...caller(), clock };
    await limiter.acquire(who, 'key', 0);
    const waiting = limiter.acquire(who, 'key', 0);
    await vi.advanceTimersByTimeAsync(0);
    // Its wake-up, and its maxWaitMs.
    expect(armed).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000);
    await waiting;
    expect(unrefs).toEqual([]);
  });

  it('shares one window between limiters on the same store, as two processes would', async () => {
    vi.setSystemTime(0);
    const store = memoryStore();
    const spec = config({ requests: windowOf(2, 1_000), mode: 'reject' });
    const [one, two] = [new Limiter(spec), new Limiter(spec)] as const;
    await one.acquire(caller(store), 'key', 0);
    vi.advanceTimersByTime(300);
    await two.acquire(caller(store), 'key', 0);
    await expect(one.acquire(caller(store), 'key', 0)).rejects.toMatchObject({ code: 'LIMIT_REJECTED', limit: 'requests', retryAfterMs: 700 });
  });

  it('never lets a request admitted on the fast path overtake one queued for a slot, when the slot frees', async () => {
    // The waiter queues for the only slot; when it frees, the first call's
    // usage (700 for the 100 reserved) leaves the waiter short of tokens,
    // while a small newcomer would fit both. At every moment
    // around that (k microtask turns after finish() starts), the newcomer
    // queues behind the waiter.
    for (let k = 0; k <= 40; k++) {
      vi.setSystemTime(0);
      const limiter = new Limiter(config({ concurrency: 1, tokens: windowOf(1_000, 1_000) }));
      const who = caller(lateStore(memoryStore(), 2));
      const waits: unknown[] = [];
      who.events.on('limit-wait', (event) => waits.push(event));
      const order: string[] = [];
      const first = await limiter.acquire(who, 'key', 100);
      const waiter = limiter.acquire(who, 'key', 400).then((ticket) => (order.push('waiter'), ticket));
      await vi.advanceTimersByTimeAsync(0);
      expect(waits).toEqual([expect.objectContaining({ limit: 'concurrency', queued: 1 })]);

      const finishing = limiter.finish(first, who, { usedTokens: 700 });
      for (let turn = 0; turn < k; turn++) await Promise.resolve();
      const newcomer = limiter.acquire(who, 'key', 10).then((ticket) => (order.push('newcomer'), ticket));
      await finishing;
      await vi.advanceTimersByTimeAsync(0);
      expect(order).toEqual([]);
      // 700 + 400 > 1 000: the waiter goes when the first call's tokens leave the window, 1 s in.
      await vi.advanceTimersByTimeAsync(1_000);
      const ticket = await waiter;
      await vi.advanceTimersByTimeAsync(100);
      expect(order).toEqual(['waiter']);
      await limiter.finish(ticket, who, { usedTokens: 400 });
      await limiter.finish(await newcomer, who, { usedTokens: 10 });
      expect(order).toEqual(['waiter', 'newcomer']);
    }
  });

  it('keeps the place of a request the store refuses on the fast path, ahead of those that came meanwhile', async () => {
    vi.setSystemTime(0);
    const store = memoryStore();
    const spec = config({ requests: windowOf(1, 1_000) });
    // Another limiter on the same store (another process) takes the only
    // place in the window, unseen by this one, whose last view says "room".
    const limiter = new Limiter(spec);
    const who = caller(lateStore(store, 3));
    await limiter.finish(await limiter.acquire(who, 'key', 0), who, {});
    await vi.advanceTimersByTimeAsync(1_000);
    await new Limiter(spec).acquire(caller(store), 'key', 0);

    const order: string[] = [];
    const calls = ['a', 'b', 'c'].map((name) => limiter.acquire(who, 'key', 0).then(() => order.push(name)));
    await vi.advanceTimersByTimeAsync(5_000);
    await Promise.all(calls);
    expect(order).toEqual(['a', 'b', 'c']);
  });

  it('admits a queue that fits in one store update, in order, up to the first that must wait', async () => {
    vi.setSystemTime(0);
    let updates = 0;
    const inner = memoryStore();
    const counted: Store = { ...inner, update: (key, update, ttlMs) => (updates++, inner.update(key, update, ttlMs)) };
    const store = lateStore(counted, 3);
    const limiter = new Limiter(config({ requests: windowOf(20, 1_000) }));
    const who = caller(store);
    const order: number[] = [];
    const calls = Array.from({ length: 30 }, (_, n) => limiter.acquire(who, 'key', 0).then(() => order.push(n)));
    await vi.advanceTimersByTimeAsync(0);
    // The first on the fast path, then the 19 queued behind it that fit, in one update; the 21st waits.
    expect(order).toEqual(Array.from({ length: 20 }, (_, n) => n));
    expect(updates).toBe(2);
    await vi.advanceTimersByTimeAsync(1_000);
    await Promise.all(calls);
    expect(order).toEqual(Array.from({ length: 30 }, (_, n) => n));
    expect(updates).toBe(3);
  });

  it('books an admission at the time the store decides it, not the time it was asked for', async () => {
    vi.setSystemTime(0);
    const inner = memoryStore();
    // A store that runs the reducer only 500 ms after it was asked (a process stalled, a write queued).
    const slow: Store = {
      ...inner,
      update: (key, update, ttlMs) => new Promise((resolve) => setTimeout(() => resolve(inner.update(key, update, ttlMs)), 500)),
    };
    const limiter = new Limiter(config({ requests: windowOf(1, 1_000) }));
    const who = caller(slow);
    const first = limiter.acquire(who, 'key', 0);
    await vi.advanceTimersByTimeAsync(500);
    await first;
    // Booked at 500, when it really went: it counts until 1 500, not 1 000.
    const state = await inner.get<WindowState>('sluice:ratelimit:test:key');
    expect(state?.requests.flat).toEqual([500, 1]);
  });
});
