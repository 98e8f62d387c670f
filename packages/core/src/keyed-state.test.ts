import { afterEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from './clock.js';
import type { CompletionContext } from './context.js';
import { createEmitter } from './events.js';
import { keyedState, keyResolver } from './keyed-state.js';
import { kOwnDeadline, memoryStore, type Store } from './store.js';

function fakeCall(overrides: Partial<CompletionContext> = {}): CompletionContext {
  return {
    id: 'call_1',
    request: { model: 'gpt-4.1', messages: [] },
    tags: { tenant: 'acme' },
    transport: { name: 'openai-compatible', origin: 'https://api.example.com/v1' },
    store: memoryStore(),
    events: createEmitter(),
    clock: systemClock,
    ...overrides,
  } as unknown as CompletionContext;
}

/** A store whose every call fails, or never answers. */
function brokenStore(mode: 'reject' | 'hang'): Store {
  const fail = () => (mode === 'reject' ? Promise.reject(new Error('ECONNREFUSED')) : new Promise<never>(() => {}));
  return { get: fail, set: fail, update: fail, delete: fail };
}

describe('keyResolver', () => {
  it('resolves every form of the shared key vocabulary', () => {
    const ctx = fakeCall();
    expect(keyResolver('global', 'x.key')(ctx)).toBe('global');
    expect(keyResolver('model', 'x.key')(ctx)).toBe('model:gpt-4.1');
    expect(keyResolver('origin-model', 'x.key')(ctx)).toBe('https://api.example.com/v1|gpt-4.1');
    expect(keyResolver({ tag: 'tenant' }, 'x.key')(ctx)).toBe('tenant:acme');
    expect(keyResolver({ tag: 'user', missing: 'anonymous' }, 'x.key')(ctx)).toBe('user:anonymous');
    expect(keyResolver((call) => `custom:${call.request.model}`, 'x.key')(ctx)).toBe('custom:gpt-4.1');
  });

  it('names the option when it is malformed or a key function misbehaves', () => {
    expect(() => keyResolver('tenant' as never, 'ratelimit.key')).toThrow(expect.objectContaining({ field: 'ratelimit.key' }));
    const bad = keyResolver(() => '' as string, 'breaker.key');
    expect(() => bad(fakeCall())).toThrow(expect.objectContaining({ field: 'breaker.key', code: 'VALIDATION' }));
  });
});

describe('keyedState', () => {
  it('answers an update on the memory store at once with updateNow, and through update as a promise of the same value', async () => {
    const ctx = fakeCall();
    const state = keyedState({ name: 'test', defaultKey: 'global', field: 'test.key' });
    const now = state.updateNow<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 60_000 });
    expect(now).toBe(1);
    await expect(state.update<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 60_000 })).resolves.toBe(2);
    expect(await ctx.store.get('sluice:test:global')).toBe(2);
  });

  it('takes the time the caller just read from the same clock instead of reading it again, and only from that clock', () => {
    let reads = 0;
    let time = 1_000_000;
    const clock = { ...systemClock, now: () => (reads++, time) };
    const state = keyedState({ name: 'test', defaultKey: 'global', field: 'test.key' });
    const ctx = fakeCall({ clock, store: memoryStore({ clock }) });
    state.updateNow<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 1_000, now: time });
    expect(reads).toBe(0);
    // Its expiry runs from that time: 999 ms later the record is there, 1,000 ms later it is gone.
    time += 999;
    expect(state.updateNow<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 1_000, now: time })).toBe(2);
    time += 1_000;
    expect(state.updateNow<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 1_000 })).toBe(1);
    expect(reads).toBe(1);
    // A store on a clock of its own reads that clock, whatever the caller read from another.
    let ownReads = 0;
    const own = { ...systemClock, now: () => (ownReads++, time) };
    const elsewhere = fakeCall({ clock, store: memoryStore({ clock: own }) });
    state.updateNow<number>(elsewhere, 'global', (current) => (current ?? 0) + 1, { ttlMs: 1_000, now: 0 });
    expect(ownReads).toBe(1);
  });

  it('hands a reducer that asks for it, on the memory store, only a record such a reducer wrote, to change in place', async () => {
    const ctx = fakeCall();
    const state = keyedState({ name: 'test', defaultKey: 'global', field: 'test.key' });
    type Counter = { n: number };
    const told: Array<true | undefined> = [];
    const count = (current: Counter | undefined, inPlace?: true): Counter => {
      told.push(inPlace);
      if (inPlace && current) {
        current.n++;
        return current;
      }
      return { n: (current?.n ?? 0) + 1 };
    };
    const options = { ttlMs: 60_000, inPlace: true };
    const first = state.updateNow<Counter>(ctx, 'global', count, options) as Counter;
    expect(state.updateNow<Counter>(ctx, 'global', count, options)).toBe(first);
    expect(first.n).toBe(2);
    // Without the option, a reducer is never told, and what it writes is not its own to change.
    expect(state.updateNow<Counter>(ctx, 'global', count, { ttlMs: 60_000 })).not.toBe(first);
    const copied = state.updateNow<Counter>(ctx, 'global', count, options) as Counter;
    expect(state.updateNow<Counter>(ctx, 'global', count, options)).toBe(copied);
    // A value set from outside is never changed: the first reducer after it copies.
    const written = { n: 10 };
    await ctx.store.set('sluice:test:global', written);
    const after = state.updateNow<Counter>(ctx, 'global', count, options);
    expect(written).toEqual({ n: 10 });
    expect(after).toEqual({ n: 11 });
    // Returned as it was given, an outside value stays outside: the next reducer is not told either.
    await ctx.store.set('sluice:test:global', written);
    state.updateNow<Counter>(ctx, 'global', (current) => current as Counter, options);
    state.updateNow<Counter>(ctx, 'global', count, options);
    expect(written).toEqual({ n: 10 });
    // Nor through the store's own update.
    await ctx.store.update<Counter>('sluice:test:global', count);
    expect(told).toEqual([undefined, true, undefined, undefined, true, undefined, undefined, undefined]);
  });

  it('finds a record through the slot its caller keeps, and through the store once that note is stale', async () => {
    let time = 1_000_000;
    const clock = { ...systemClock, now: () => time };
    const store = memoryStore({ clock, maxEntries: 3 });
    const ctx = fakeCall({ clock, store });
    const state = keyedState({ name: 'test', defaultKey: 'global', field: 'test.key' });
    const slot = { slotOwner: undefined as unknown, slotEntry: undefined as unknown };
    const add = (current: number | undefined) => (current ?? 0) + 1;
    const bump = (key: string, options: { slot?: typeof slot; ttlMs?: number } = {}) =>
      state.updateNow<number>(ctx, key, add, { ttlMs: 60_000, slot, ...options });
    expect(bump('a')).toBe(1);
    expect(slot.slotOwner).toBeDefined();
    expect(bump('a')).toBe(2);
    // Written elsewhere meanwhile: the note is the record itself, so nothing is lost.
    await store.update<number>('sluice:test:a', (n = 0) => n + 10);
    expect(bump('a')).toBe(13);
    // Deleted, then written again: the note points at a removed record, and the store's own is found.
    await store.delete('sluice:test:a');
    await store.set('sluice:test:a', 100);
    expect(bump('a')).toBe(101);
    // Evicted past the store's bound, then expired: each time, counted from nothing.
    for (const key of ['b', 'c', 'd']) bump(key, { slot: undefined });
    expect(await store.get('sluice:test:a')).toBeUndefined();
    expect(bump('a')).toBe(1);
    expect(bump('a', { ttlMs: 10 })).toBe(2);
    time += 10;
    expect(bump('a')).toBe(1);
    // A note of another key, or from another store, is not taken for this one.
    expect(bump('d')).toBe(2);
    expect(await store.get('sluice:test:a')).toBe(1);
    const other = fakeCall({ clock, store: memoryStore({ clock }) });
    expect(state.updateNow<number>(other, 'd', add, { ttlMs: 60_000, slot })).toBe(1);
    expect(bump('d')).toBe(3);
  });

  it('calls a store spread from the memory store through its own update, not the memory store\'s', async () => {
    const inner = memoryStore();
    const seen: string[] = [];
    const store: Store = {
      ...inner,
      update: (key, update, ttlMs) => {
        seen.push(key);
        return inner.update(key, update, ttlMs);
      },
    };
    const ctx = fakeCall({ store });
    const state = keyedState({ name: 'test', defaultKey: 'global', field: 'test.key' });
    const result = state.updateNow<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 60_000 });
    expect(result).toBeInstanceOf(Promise);
    await expect(result).resolves.toBe(1);
    await state.update<number>(ctx, 'global', (current) => (current ?? 0) + 1, { ttlMs: 60_000 });
    expect(seen).toEqual(['sluice:test:global', 'sluice:test:global']);
  });

  it('applies the store-error policy when a reducer throws on the memory store, as on any other', async () => {
    const ctx = fakeCall();
    const events: unknown[] = [];
    ctx.events.on('store-error', (event) => events.push(event));
    const state = keyedState({ name: 'test', defaultKey: 'global', field: 'test.key', onStoreError: 'closed' });
    const boom = () => {
      throw new Error('bad reducer');
    };
    await expect(state.update(ctx, 'global', boom, { ttlMs: 1_000 })).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(state.update(ctx, 'global', boom, { ttlMs: 1_000, phase: 'settle' })).resolves.toBeUndefined();
    expect(events).toHaveLength(2);
  });

  it('namespaces records, binds to the call store and writes a TTL from the new value', async () => {
    const ctx = fakeCall();
    const state = keyedState({ name: 'demo', defaultKey: 'model', field: 'demo.key' });
    const key = state.keyOf(ctx);
    const next = await state.update<number>(ctx, key, (n = 0) => n + 1, { ttlMs: (n) => n * 1_000 });
    expect(next).toBe(1);
    expect(await ctx.store.get('sluice:demo:model:gpt-4.1')).toBe(1);
    expect(state.storeFor()).toBe(ctx.store);
    expect(await state.get(key)).toBe(1);
  });

  it("fails open by default: store-error, then the call goes ahead with no state", async () => {
    const ctx = fakeCall({ store: brokenStore('reject') });
    const errors: unknown[] = [];
    ctx.events.on('store-error', (event) => errors.push(event));
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key' });
    await expect(state.update(ctx, 'global', () => 1, { ttlMs: 1_000 })).resolves.toBeUndefined();
    expect(errors).toMatchObject([{ name: 'demo', key: 'global', operation: 'update', policy: 'open', id: 'call_1' }]);
  });

  it('fails closed on admission with STORE_UNAVAILABLE, but never at settlement', async () => {
    const ctx = fakeCall({ store: brokenStore('reject') });
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key', onStoreError: 'closed' });
    await expect(state.update(ctx, 'global', () => 1, { ttlMs: 1_000 })).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      middleware: 'demo',
      retryable: true,
      upstreamFault: false,
    });
    await expect(state.update(ctx, 'global', () => 1, { ttlMs: 1_000, phase: 'settle' })).resolves.toBeUndefined();
  });

  it('falls back to in-process state under the memory policy', async () => {
    const ctx = fakeCall({ store: brokenStore('reject') });
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key', onStoreError: 'memory' });
    await state.update<number>(ctx, 'global', (n = 0) => n + 1, { ttlMs: 1_000 });
    await expect(state.update<number>(ctx, 'global', (n = 0) => n + 1, { ttlMs: 1_000 })).resolves.toBe(2);
    await expect(state.get('global', ctx)).resolves.toBe(2);
  });

  it('times out a store that never answers instead of hanging the call', async () => {
    const ctx = fakeCall({ store: brokenStore('hang') });
    const errors: Array<{ error: unknown }> = [];
    ctx.events.on('store-error', (event) => errors.push(event));
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key', timeoutMs: 5 });
    await expect(state.update(ctx, 'global', () => 1, { ttlMs: 1_000 })).resolves.toBeUndefined();
    expect(errors[0]?.error).toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('takes a store that answers with the value itself, not a promise, at its word', async () => {
    const map = new Map<string, unknown>();
    // Three lines over a Map, as a user might write one: no promise anywhere.
    const plain = {
      get: (key: string) => map.get(key),
      set: (key: string, value: unknown) => void map.set(key, value),
      update: (key: string, reducer: (current: unknown) => unknown) => (map.set(key, reducer(map.get(key))), map.get(key)),
      delete: (key: string) => void map.delete(key),
    } as unknown as Store;
    const ctx = fakeCall({ store: plain });
    const errors: unknown[] = [];
    ctx.events.on('store-error', (event) => errors.push(event));
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key' });
    await state.update<number>(ctx, 'global', (n = 0) => n + 1, { ttlMs: 1_000 });
    await expect(state.update<number>(ctx, 'global', (n = 0) => n + 1, { ttlMs: 1_000 })).resolves.toBe(2);
    await expect(state.get('global', ctx)).resolves.toBe(2);
    await state.delete('global', ctx);
    await expect(state.get('global', ctx)).resolves.toBeUndefined();
    // Before, every call failed on "run(...).then is not a function", a store-error and the policy.
    expect(errors).toEqual([]);
  });

  it('leaves no timer behind when a store throws instead of rejecting', async () => {
    let timers = 0;
    const clock = {
      ...systemClock,
      setTimeout: (callback: () => void, ms: number) => (timers++, systemClock.setTimeout(callback, ms)),
      clearTimeout: (handle: unknown) => (timers--, systemClock.clearTimeout(handle)),
    };
    const throwing = {
      ...brokenStore('reject'),
      update: () => {
        throw new Error('not connected');
      },
    } as Store;
    const ctx = fakeCall({ store: throwing, clock });
    const errors: Array<{ error: unknown }> = [];
    ctx.events.on('store-error', (event) => errors.push(event));
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key' });
    await expect(state.update(ctx, 'global', () => 1, { ttlMs: 1_000 })).resolves.toBeUndefined();
    expect(errors[0]?.error).toEqual(new Error('not connected'));
    expect(timers).toBe(0);
  });

  it("takes the store's own timeout when the middleware names none", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const ctx = fakeCall({ store: { ...brokenStore('hang'), timeoutMs: 5_000 } as Store });
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key' });
    let settled = false;
    void state.update(ctx, 'global', () => 1, { ttlMs: 1_000 }).then(() => (settled = true));
    await vi.advanceTimersByTimeAsync(50);
    expect(settled).toBe(false);
    // Due at 5 000 ms, and it looks once more a turn later (see the next test).
    await vi.advanceTimersByTimeAsync(4_951);
    expect(settled).toBe(true);
  });

  it('sets no timer around a store that bounds its own calls, unless the middleware names a timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    // Answers after 200 ms: past the 50 ms default, within the store's own (unenforced here) bound.
    const slow: Store = {
      ...brokenStore('hang'),
      update: <T>(_key: string, reducer: (current: T | undefined) => T) =>
        new Promise<T>((resolve) => setTimeout(() => resolve(reducer(undefined)), 200)),
    };
    const own = { ...slow, [kOwnDeadline]: true } as Store;
    const events: unknown[] = [];
    const run = (store: Store, timeoutMs?: number) => {
      const ctx = fakeCall({ store });
      ctx.events.on('store-error', (event) => events.push(event));
      return keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key', timeoutMs }).update(ctx, 'global', () => 7, { ttlMs: 1_000 });
    };
    const trusted = run(own);
    const unmarked = run(slow);
    const named = run(own, 20);
    await vi.advanceTimersByTimeAsync(250);
    await expect(trusted).resolves.toBe(7);
    await expect(unmarked).resolves.toBeUndefined();
    await expect(named).resolves.toBeUndefined();
    expect(events).toHaveLength(2);
  });

  it('takes an answer that is waiting when the time runs out (a busy event loop) over the timeout', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const state = keyedState({ name: 'demo', defaultKey: 'global', field: 'demo.key' });
    const events: unknown[] = [];
    // An answer that lands in the same instant as the 50 ms deadline, after the timeout's own timer
    // fired: as when a blocked loop sees the deadline and the reply on the socket at once.
    const late: Store = {
      ...brokenStore('hang'),
      update: <T>(_key: string, reducer: (current: T | undefined) => T) =>
        new Promise<T>((resolve) => setTimeout(() => resolve(reducer(undefined)), 50)),
    };
    const ctx = fakeCall({ store: late });
    ctx.events.on('store-error', (event) => events.push(event));
    const result = state.update(ctx, 'global', () => 7, { ttlMs: 1_000 });
    await vi.advanceTimersByTimeAsync(60);
    await expect(result).resolves.toBe(7);
    expect(events).toEqual([]);
  });
});

afterEach(() => {
  vi.useRealTimers();
});
