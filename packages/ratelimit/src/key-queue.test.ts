import { createEmitter, memoryStore, systemClock } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { emptyLog } from './bucket.js';
import { type Caller, KeyQueue, KeyQueues, type Waiter } from './key-queue.js';
import type { WindowState } from './window-state.js';

const keep = (_queue: KeyQueue, current: WindowState | undefined): WindowState =>
  current ?? { at: 0, requests: emptyLog, tokens: emptyLog, pausedUntil: 0 };

const caller: Caller = {
  id: 'call', clock: systemClock, events: createEmitter(), signal: new AbortController().signal, store: memoryStore(), remainingMs: () => Infinity,
};

function waiter(cost: number): Waiter {
  return {
    caller, cost, enqueuedAt: 0, latestAt: Infinity, bound: 'maxWaitMs', limit: 'requests', announced: false, gone: false,
    resolve: () => {}, reject: () => {}, detach: () => {},
  };
}

describe('KeyQueues', () => {
  it('hands back the same record for a key from one call to the next, instead of rebuilding it', () => {
    const queues = new KeyQueues('ratelimit:r10', keep, 'sluice:ratelimit:');
    const store = memoryStore();
    const record = queues.get(store, 'tenant:acme');
    expect(queues.get(store, 'tenant:acme')).toBe(record);
    expect(record.storeKey).toBe('ratelimit:r10:tenant:acme');
    // Another store is another process's view: its own record.
    expect(queues.get(memoryStore(), 'tenant:acme')).not.toBe(record);
  });

  it('forgets a record left idle for a whole sweep, and never one in use', () => {
    const queues = new KeyQueues('p', keep, 'sluice:ratelimit:');
    const store = memoryStore();
    const idle = queues.get(store, 'idle');
    const busy = queues.get(store, 'busy');
    busy.inFlight = 1;
    for (let i = 0; i < 2 * 1024; i++) queues.get(store, `other-${i % 10}`);
    expect(queues.get(store, 'idle')).not.toBe(idle);
    expect(queues.get(store, 'busy')).toBe(busy);
  });

  it('keeps a bounded number of records under a stream of one-off keys', () => {
    const queues = new KeyQueues('p', keep, 'sluice:ratelimit:');
    const store = memoryStore();
    let most = 0;
    for (let i = 0; i < 20_000; i++) {
      queues.get(store, `tenant-${i}`);
      most = Math.max(most, queues.size(store));
    }
    // At most the keys of the last two epochs of 1 024 lookups.
    expect(most).toBeLessThanOrEqual(2 * 1024);
    expect(queues.epochLength(store)).toBe(1024);
  });

  it('keeps the records of a few thousand keys called in turn, and lets them go when one-off keys follow', () => {
    const queues = new KeyQueues('p', keep, 'sluice:ratelimit:');
    const store = memoryStore();
    const tenants = Array.from({ length: 5_000 }, (_, i) => `tenant-${i}`);
    const records = new Map<string, KeyQueue>();
    let made = 0;
    for (let round = 0; round < 40; round++) {
      for (const tenant of tenants) {
        const record = queues.get(store, tenant);
        if (records.get(tenant) !== record) made++;
        records.set(tenant, record);
      }
      // Epochs of 1 024 lookups kept none of them: each call made its record again.
      if (round === 0) expect(made).toBe(5_000);
    }
    // Swept keys coming back doubled the epoch until it spans a round: from then on, no record is made.
    expect(queues.epochLength(store)).toBeGreaterThanOrEqual(5_000);
    expect(made).toBeLessThan(5 * 5_000);
    made = 0;
    for (const tenant of tenants) if (queues.get(store, tenant) !== records.get(tenant)) made++;
    expect(made).toBe(0);
    expect(queues.size(store)).toBe(5_000);
    // A stream of keys never seen again halves the epoch back, and the records follow.
    for (let i = 0; i < 200_000; i++) queues.get(store, `one-off-${i}`);
    expect(queues.epochLength(store)).toBe(1024);
    expect(queues.size(store)).toBeLessThanOrEqual(2 * 1024);
  });

  it('never keeps more than two of its longest epochs of records, whatever the keys', () => {
    const queues = new KeyQueues('p', keep, 'sluice:ratelimit:');
    const store = memoryStore();
    let most = 0;
    // 100 000 tenants at random: they come back often enough to grow the epoch to its longest, and the records with it.
    let seed = 7;
    for (let i = 0; i < 600_000; i++) {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      queues.get(store, `tenant-${seed % 100_000}`);
      if (i % 1_000 === 0) most = Math.max(most, queues.size(store));
    }
    expect(queues.epochLength(store)).toBe(32_768);
    expect(most).toBeGreaterThan(32_768);
    expect(most).toBeLessThanOrEqual(2 * 32_768);
  });
});

describe('KeyQueue', () => {
  it('puts a request refused on the fast path back at the head, ahead of those that came after it', () => {
    const queue = new KeyQueue('k', 'p:k', memoryStore(), keep, 'sluice:ratelimit:');
    const [early, later, refused] = [waiter(1), waiter(2), waiter(4)];
    queue.add(early, false);
    queue.add(later, false);
    queue.remove(early);
    expect(queue.head()).toBe(later);
    queue.add(refused, true);
    expect(queue.head()).toBe(refused);
    expect([queue.live, queue.liveCost]).toEqual([2, 6]);
  });

  it('counts as waiting only the requests told they wait', () => {
    const queue = new KeyQueue('k', 'p:k', memoryStore(), keep, 'sluice:ratelimit:');
    const [admitting, waiting] = [waiter(0), waiter(0)];
    waiting.announced = true;
    queue.add(admitting, false);
    queue.add(waiting, false);
    queue.waiting++;
    queue.remove(admitting);
    expect(queue.waiting).toBe(1);
    queue.remove(waiting);
    expect(queue.remove(waiting)).toBe(false);
    expect([queue.live, queue.waiting, queue.idle]).toEqual([0, 0, true]);
  });
});
