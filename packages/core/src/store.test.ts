import { afterEach, describe, expect, it, vi } from 'vitest';
import { sleep, systemClock } from './clock.js';
import { memoryStore } from './store.js';

describe('memoryStore', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads back what was set and forgets deleted keys', async () => {
    const store = memoryStore();
    await store.set('a', { n: 1 });
    expect(await store.get('a')).toEqual({ n: 1 });
    await store.delete('a');
    expect(await store.get('a')).toBeUndefined();
  });

  it('updates atomically: 100 concurrent increments all count', async () => {
    const store = memoryStore();
    await Promise.all(Array.from({ length: 100 }, () => store.update<number>('n', (n = 0) => n + 1)));
    expect(await store.get('n')).toBe(100);
  });

  it('expires keys on the clock', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = memoryStore({ clock: systemClock });
    await store.set('k', 1, 1_000);
    vi.advanceTimersByTime(999);
    expect(await store.get('k')).toBe(1);
    vi.advanceTimersByTime(1);
    expect(await store.get('k')).toBeUndefined();
  });

  it('sweeps expired keys so memory follows the live ones', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = memoryStore();
    for (let i = 0; i < 2_000; i++) await store.set(`user-${i}`, i, 10);
    vi.advanceTimersByTime(11);
    for (let i = 0; i < 1_024; i++) await store.set(`fresh-${i}`, i);
    // Two entries looked at per write: 1,024 writes have visited all 2,000 expired ones.
    expect(store.size).toBe(1_024);
  });

  it('sweeps a record that runs out before every record the sweep has looked at', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = memoryStore();
    // Long-lived records, swept over until the sweep knows none runs out for a minute.
    for (let i = 0; i < 100; i++) await store.set(`long-${i}`, i, 60_000);
    for (let i = 0; i < 200; i++) await store.update('counter', (n: number = 0) => n + 1, 60_000);
    // Written later with a shorter life, new or rewritten: each is still swept once it runs out.
    await store.set('short-new', 1, 10);
    await store.set('long-5', 5, 10);
    vi.advanceTimersByTime(11);
    for (let i = 0; i < 200; i++) await store.set(`fresh-${i % 3}`, i);
    expect(store.size).toBe(100 - 1 + 1 + 3);
    // Unread and past their time, the long ones go too.
    vi.advanceTimersByTime(60_000);
    for (let i = 0; i < 200; i++) await store.set(`fresh-${i % 3}`, i);
    expect(store.size).toBe(3);
  });

  it('takes a TTL of 0 or less as already run out, as Redis does', async () => {
    const store = memoryStore();
    await store.set('gone', 1, -5);
    await store.update('zero', () => 1, 0);
    expect(await store.get('gone')).toBeUndefined();
    expect(await store.get('zero')).toBeUndefined();
  });
});

describe('sleep', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits on fake time', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let woke = false;
    const waiting = sleep(5_000).then(() => (woke = true));
    await vi.advanceTimersByTimeAsync(4_999);
    expect(woke).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await waiting;
    expect(woke).toBe(true);
  });

  it('rejects with the signal reason the moment it aborts', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const controller = new AbortController();
    const waiting = sleep(60_000, { signal: controller.signal });
    controller.abort(new Error('stop'));
    await expect(waiting).rejects.toThrow('stop');
  });
});

describe('memoryStore bounds', () => {
  it('evicts the least recently written record past maxEntries', async () => {
    const store = memoryStore({ maxEntries: 3 });
    for (const key of ['a', 'b', 'c']) await store.set(key, key);
    await store.update<string>('a', (value) => `${value}!`);
    await store.set('d', 'd');
    expect(store.size).toBe(3);
    expect(await store.get('b')).toBeUndefined();
    expect(await store.get('a')).toBe('a!');
    expect(store.evicted).toBe(1);
  });

  it('counts the records it evicted before they ran out, not those past their time', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = memoryStore({ maxEntries: 2 });
    await store.set('a', 1, 10);
    await store.set('b', 2);
    vi.advanceTimersByTime(10);
    // 'a' has run out: making room for 'c' forgets nothing.
    await store.set('c', 3);
    expect(store.evicted).toBe(0);
    // 'b' has not: making room for 'd' forgets it early.
    await store.set('d', 4);
    expect(store.evicted).toBe(1);
    expect(store.size).toBe(2);
  });

  it('evicts in order of last write over many writes, re-writes and deletes', async () => {
    const store = memoryStore({ maxEntries: 8 });
    const order: string[] = [];
    let seed = 7;
    const next = () => (seed = (seed * 48_271) % 2_147_483_647);
    for (let i = 0; i < 5_000; i++) {
      const key = `k${next() % 20}`;
      if (next() % 10 === 0) {
        await store.delete(key);
        order.splice(order.indexOf(key) >>> 0, order.includes(key) ? 1 : 0);
        continue;
      }
      await store.set(key, i);
      if (order.includes(key)) order.splice(order.indexOf(key), 1);
      order.push(key);
      if (order.length > 8) order.shift();
    }
    expect(store.size).toBe(order.length);
    for (const key of order) expect(await store.get(key)).toBeDefined();
  });

  it('keeps an update whose record its reducer removed, evicted or rewrote meanwhile', async () => {
    const store = memoryStore({ maxEntries: 2 });
    await store.set('a', 1);
    // The reducer deletes its own record: the update still lands.
    await store.update<number>('a', (value) => {
      void store.delete('a');
      return (value ?? 0) + 1;
    });
    expect(await store.get('a')).toBe(2);
    // The reducer's own writes evict the record it is updating: the update still lands, and the bound holds.
    await store.update<number>('a', (value) => {
      void store.set('b', 'b');
      void store.set('c', 'c');
      return (value ?? 0) + 1;
    });
    expect(await store.get('a')).toBe(3);
    expect(store.size).toBe(2);
    // The reducer rewrites its record: the update's value wins.
    await store.update<number>('a', (value) => {
      void store.set('a', 100);
      return (value ?? 0) + 1;
    });
    expect(await store.get('a')).toBe(4);
  });

  it('takes a TTL computed from the value written', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const store = memoryStore({ clock: systemClock });
    await store.update<number>('short', () => 1, (value) => value * 1_000);
    await store.update<number>('long', () => 5, (value) => value * 1_000);
    vi.advanceTimersByTime(1_000);
    expect(await store.get('short')).toBeUndefined();
    expect(await store.get('long')).toBe(5);
  });

  it('names a bad maxEntries', () => {
    expect(() => memoryStore({ maxEntries: 0 })).toThrow(expect.objectContaining({ field: 'memoryStore.maxEntries' }));
  });
});
