import { memoryStore } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { checkedStore } from './checked-store.js';
import { manualClock } from './manual-clock.js';

interface Counter {
  count: number;
  seen: string[];
}

describe('checkedStore', () => {
  it('keeps what a pure reducer returns, as JSON', async () => {
    const store = checkedStore();
    const add = (current: Counter | undefined): Counter => ({ count: (current?.count ?? 0) + 1, seen: [...(current?.seen ?? []), 'x'] });
    await store.update('k', add);
    await expect(store.update('k', add)).resolves.toEqual({ count: 2, seen: ['x', 'x'] });
    expect(store.raw('k')).toBe('{"count":2,"seen":["x","x"]}');
    expect(store.violations).toEqual([]);
    expect(() => store.assertClean()).not.toThrow();
  });

  it('catches a reducer that mutates its input, naming the key', async () => {
    const store = checkedStore();
    await store.set<Counter>('breaker:a', { count: 0, seen: [] });
    const mutate = (current: Counter | undefined): Counter => {
      current!.count++;
      return current!;
    };
    await expect(store.update('breaker:a', mutate)).rejects.toMatchObject({
      name: 'AssertionError',
      message: expect.stringContaining('"breaker:a" mutated its input'),
    });
    expect(store.violations).toHaveLength(1);
    expect(() => store.assertClean()).toThrow(/mutated its input/);
  });

  it('catches an impure reducer: two runs on the same value differ', async () => {
    const store = checkedStore();
    let calls = 0;
    const impure = (): Counter => ({ count: ++calls, seen: [] });
    await expect(store.update('limit:b', impure)).rejects.toThrow(/"limit:b" is not pure/);
  });

  it('catches a reducer that keeps the time it reads from outside', async () => {
    const clock = manualClock(0);
    const store = checkedStore({ clock });
    // Pure as long as time stands still: the double runs it twice at the same instant.
    const stamp = () => ({ at: clock.now() });
    await expect(store.update('k', stamp)).resolves.toEqual({ at: 0 });
    const ticking = () => {
      clock.advance(1);
      return { at: clock.now() };
    };
    await expect(store.update('k', ticking)).rejects.toThrow(/not pure/);
  });

  it.each([
    ['a Date', { opened: new Date(0) }, 'the value.opened is a Date'],
    ['a Map', { keys: new Map() }, '.keys is a Map'],
    ['NaN', { count: Number.NaN }, '.count is NaN'],
    ['Infinity in an array', { list: [1, Infinity] }, '.list[1] is Infinity'],
    ['an undefined field', { until: undefined }, '.until is undefined'],
  ])('catches state that is not plain JSON: %s', async (_, value, where) => {
    const store = checkedStore();
    await expect(store.update('k', () => value)).rejects.toThrow(where);
    await expect(store.set('k', value)).rejects.toThrow(where);
  });

  it('hands out copies, so a caller mutating what it read changes nothing', async () => {
    const store = checkedStore();
    await store.set<Counter>('k', { count: 1, seen: [] });
    const read = await store.get<Counter>('k');
    read!.count = 99;
    await expect(store.get('k')).resolves.toEqual({ count: 1, seen: [] });
  });

  it('expires records on the clock, with a TTL given as a number or as a function of the value', async () => {
    const clock = manualClock(0);
    const store = checkedStore({ clock });
    await store.update('fixed', () => ({ n: 1 }), 1_000);
    await store.update('computed', () => ({ untilMs: 5_000 }), (next) => next.untilMs);
    clock.advance(999);
    expect(store.raw('fixed')).toBe('{"n":1}');
    clock.advance(1);
    await expect(store.get('fixed')).resolves.toBeUndefined();
    await expect(store.get('computed')).resolves.toEqual({ untilMs: 5_000 });
    clock.advance(4_000);
    expect(store.raw('computed')).toBeUndefined();
  });

  it('catches a TTL that is not a finite number', async () => {
    const store = checkedStore();
    await expect(store.update('k', () => ({ n: 1 }), () => Number.NaN)).rejects.toThrow(/TTL for key "k" is NaN/);
  });

  it('counts the operations', async () => {
    const store = checkedStore();
    await store.get('a');
    await store.set('a', 1);
    await store.update<number>('a', (n) => (n ?? 0) + 1);
    await store.delete('a');
    expect(store.counts).toEqual({ get: 1, set: 1, update: 1, delete: 1 });
    expect(store.calls).toBe(4);
  });

  it('checks the reducers run against an inner store and keeps the values there', async () => {
    const inner = memoryStore();
    const store = checkedStore({ inner });
    await store.update<number>('k', (n) => (n ?? 0) + 1, 60_000);
    await expect(inner.get('k')).resolves.toBe(1);
    await expect(store.update<number[]>('list', (list = []) => (list.push(1), list))).resolves.toEqual([1]);
    await store.set('list', [1]);
    await expect(store.update<number[]>('list', (list = []) => (list.push(2), list))).rejects.toThrow(/mutated its input/);
  });
});
