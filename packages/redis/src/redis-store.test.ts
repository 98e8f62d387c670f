import { createHash } from 'node:crypto';
import { checkedStore } from '@sluice/testing/kit';
import { Redis } from 'ioredis';
import { createClient } from 'redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisStore } from './redis-store.js';
import { compareAndSet, compareAndSetSha } from './scripts.js';
import { skipRedis, startRedis, type TestRedis } from './test-redis-server.js';

interface Client {
  quit(): Promise<unknown>;
}

/** The two clients users bring, each connected to the test's server. */
const clients: Record<string, (url: string) => Promise<Client & Parameters<typeof redisStore>[0]['client']>> = {
  'node-redis': async (url) => {
    const client = createClient({ url });
    client.on('error', () => undefined);
    await client.connect();
    return client as never;
  },
  ioredis: async (url) => {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    await client.connect();
    return client;
  },
};

/** Sends a raw command with whichever client it is. */
function raw(client: object, args: string[]): Promise<unknown> {
  if (client instanceof Redis) return client.call(args[0]!, ...args.slice(1));
  return (client as { sendCommand(a: string[]): Promise<unknown> }).sendCommand(args);
}

it('ships the SHA-1 of the script it sends', () => {
  expect(createHash('sha1').update(compareAndSet).digest('hex')).toBe(compareAndSetSha);
});

it('rejects what is not a Redis client, and a prefix with braces, naming the field', () => {
  expect(() => redisStore({ client: {} as never })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'redisStore.client' }));
  expect(() => redisStore({ client: { evalsha() {}, call() {}, eval() {} } as never, prefix: 'a{b}' })).toThrow(
    expect.objectContaining({ field: 'redisStore.prefix' }),
  );
});

// A loaded CI machine can take longer than the default 50 ms; the timeout has its own test.
const timeoutMs = 5_000;

it('batches the keys of different records into one script only where they may share it: never on a cluster client', async () => {
  /** An ioredis look-alike recording the keys of each script call and answering "written" for each. */
  const client = (isCluster: boolean) => {
    const calls: string[][] = [];
    return {
      calls,
      status: 'ready',
      isCluster,
      async evalsha(_sha: string, keyCount: number, ...rest: string[]) {
        calls.push(rest.slice(0, keyCount));
        return ['0', '0', ...rest.slice(0, keyCount).flatMap(() => [1, ''])];
      },
      eval: async () => [],
      call: async () => ['0', '0'],
    };
  };
  for (const isCluster of [false, true]) {
    const fake = client(isCluster);
    const store = redisStore({ client: fake, timeoutMs });
    expect(await Promise.all(['a', 'b', 'c'].map((key) => store.update(key, () => key, 1_000)))).toEqual(['a', 'b', 'c']);
    expect(fake.calls).toEqual(isCluster ? [['{a}'], ['{b}'], ['{c}']] : [['{a}', '{b}', '{c}']]);
  }
});

describe.skipIf(skipRedis()).each(Object.keys(clients))('redisStore over %s', (name) => {
  const connect = clients[name]!;
  let redis: TestRedis;
  let opened: Client[] = [];
  const open = async () => {
    const client = await connect(redis.url);
    opened.push(client);
    return client;
  };

  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await Promise.all(opened.map((client) => client.quit().catch(() => undefined)));
    opened = [];
    await redis.stop();
  });

  it('reads back what it wrote, and forgets what it deleted', async () => {
    const store = redisStore({ client: await open(), prefix: `${name}:`, timeoutMs });
    await store.set('a', { n: 1 }, 60_000);
    expect(await store.get('a')).toEqual({ n: 1 });
    expect(await store.update<{ n: number }>('a', (current) => ({ n: (current?.n ?? 0) + 1 }), 60_000)).toEqual({ n: 2 });
    await store.delete('a');
    expect(await store.get('a')).toBeUndefined();
    expect(await store.update<number>('a', (current) => (current ?? 10) + 1, 60_000)).toBe(11);
  });

  it('keeps each record under its own hash tag, with the TTL the write asked for', async () => {
    const client = await open();
    const store = redisStore({ client, prefix: `${name}:ttl:`, timeoutMs });
    await store.update('sluice:ratelimit:global', () => ({ at: 1 }), (value) => (value.at === 1 ? 30_000 : 0));
    const probe = await connect(redis.url);
    opened.push(probe);
    const command = (args: string[]) => raw(probe, args);
    const ttl = Number(await command(['PTTL', `${name}:ttl:{sluice:ratelimit:global}`]));
    expect(ttl).toBeGreaterThan(29_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
    await store.update('no-ttl', () => 1);
    expect(Number(await command(['PTTL', `${name}:ttl:{no-ttl}`]))).toBe(-1);
    await store.update('gone', () => 1, 0);
    expect(Number(await command(['EXISTS', `${name}:ttl:{gone}`]))).toBe(0);
  });

  it('leaves a record an update does not change at its version, refreshing only its TTL, so others do not conflict', async () => {
    const a = redisStore({ client: await open(), prefix: `${name}:same:`, timeoutMs });
    const b = redisStore({ client: await open(), prefix: `${name}:same:`, timeoutMs });
    const probe = await open();
    const key = `${name}:same:{k}`;
    await a.update<number>('k', () => 1, 10_000);
    const written = await raw(probe, ['GET', key]);
    // b has not seen it: its first try conflicts, and the unchanged result needs no second round trip.
    expect(await b.update<number>('k', (current) => current ?? 0, 60_000)).toBe(1);
    // b's remembered copy is current: a check of the version, which refreshes the TTL only.
    expect(await b.update<number>('k', (current) => current ?? 0, 60_000)).toBe(1);
    expect(await raw(probe, ['GET', key])).toBe(written);
    expect(Number(await raw(probe, ['PTTL', key]))).toBeGreaterThan(10_000);
    // a still holds the current version: its next write goes through on the first try.
    expect(await a.update<number>('k', (current) => (current ?? 0) + 1, 10_000)).toBe(2);
  });

  it('counts every update exactly when many stores hit one key at once', async () => {
    const stores = await Promise.all([1, 2, 3, 4].map(async () => redisStore({ client: await open(), prefix: `${name}:race:`, timeoutMs })));
    const increments = stores.flatMap((store) =>
      Array.from({ length: 50 }, () => store.update<number>('n', (current) => (current ?? 0) + 1, 60_000)),
    );
    const results = await Promise.all(increments);
    // Linearisable: every caller saw its own distinct step, and none was lost.
    expect(new Set(results).size).toBe(200);
    expect(Math.max(...results)).toBe(200);
    expect(await stores[0]!.get('n')).toBe(200);
  });

  it('remembers at most maxEntries records, keeps the one in use, and still counts a forgotten one right', async () => {
    const client = await open();
    const store = redisStore({ client, prefix: `${name}:bounded:`, timeoutMs, maxEntries: 3 });
    const probe = await open();
    const scripts = async () => Number(/calls=(\d+)/.exec(String(await raw(probe, ['INFO', 'commandstats'])).split('cmdstat_evalsha')[1] ?? '')?.[1] ?? 0);
    const add = (key: string) => store.update<number>(key, (current) => (current ?? 0) + 1, 60_000);
    await add('hot');
    for (let i = 0; i < 20; i++) {
      // Two new records between two uses: without its second chance it would be the oldest, and go.
      await add(`cold${i}`);
      await add(`colder${i}`);
      if (i < 19) await add('hot');
    }
    // Still remembered: its next write goes on the first try, one script call.
    const before = await scripts();
    expect(await add('hot')).toBe(21);
    expect((await scripts()) - before).toBe(1);
    // Long forgotten: the first try conflicts, and the retry still counts on from what Redis holds.
    const again = await scripts();
    expect(await add('cold0')).toBe(2);
    expect((await scripts()) - again).toBe(2);
  });

  it('never lets two stores both take the last unit of a limit', async () => {
    const stores = await Promise.all([1, 2, 3].map(async () => redisStore({ client: await open(), prefix: `${name}:limit:`, timeoutMs })));
    const take = (current: { used: number; granted: boolean } | undefined) => {
      const used = current?.used ?? 0;
      return used < 25 ? { used: used + 1, granted: true } : { used, granted: false };
    };
    const results = await Promise.all(stores.flatMap((store) => Array.from({ length: 30 }, () => store.update('units', take, 60_000))));
    expect(results.filter((result) => result.granted)).toHaveLength(25);
  });

  it('sends the writes to many records that are ready together as one command, each record decided on its own', async () => {
    const probe = await open();
    const scriptCalls = async () => {
      const info = String(await raw(probe, ['INFO', 'commandstats']));
      return [...info.matchAll(/cmdstat_(evalsha|eval):calls=(\d+)/g)].reduce((sum, match) => sum + Number(match[2]), 0);
    };
    const [a, b] = [redisStore({ client: await open(), prefix: `${name}:many:`, timeoutMs }), redisStore({ client: await open(), prefix: `${name}:many:`, timeoutMs })];
    const keys = Array.from({ length: 100 }, (_, index) => `k${index}`);
    const increment = (current: number | undefined) => (current ?? 0) + 1;
    const before = await scriptCalls();
    expect(await Promise.all(keys.map((key) => a.update<number>(key, increment, 60_000)))).toEqual(keys.map(() => 1));
    // 100 records, 16 to a command.
    expect((await scriptCalls()) - before).toBe(7);
    // Two stores on the same 100 records at once: every record's conflicts are settled on their own, none lost.
    const results = await Promise.all(keys.flatMap((key) => [a, b, a, b].map((store) => store.update<number>(key, increment, 60_000).then((value) => [key, value] as const))));
    for (const key of keys) {
      expect(results.filter(([k]) => k === key).map(([, value]) => value).sort()).toEqual([2, 3, 4, 5]);
      expect(await b.get(key)).toBe(5);
    }
  });

  it('fails only the callers of a record that holds something else, not the records batched with it', async () => {
    const probe = await open();
    await raw(probe, ['HSET', `${name}:foreign:{bad}`, 'field', '1']);
    const store = redisStore({ client: await open(), prefix: `${name}:foreign:`, timeoutMs });
    const [bad, good] = await Promise.allSettled([store.update('bad', () => 1, 60_000), store.update('good', () => 1, 60_000)]);
    expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'STORE_UNAVAILABLE' } });
    expect(good).toEqual({ status: 'fulfilled', value: 1 });
    expect(await store.get('good')).toBe(1);
  });

  it('reads a record whose JSON does not parse as no record, and writes over it', async () => {
    const probe = await open();
    await raw(probe, ['SET', `${name}:garbled:{bad}`, 'v7|{not json']);
    await raw(probe, ['SET', `${name}:garbled:{worse}`, 'v8|']);
    const store = redisStore({ client: await open(), prefix: `${name}:garbled:`, timeoutMs });
    expect(await store.get('bad')).toBeUndefined();
    // Before, each update threw a SyntaxError as STORE_UNAVAILABLE, for good: the record was never replaced.
    expect(await store.update<number>('bad', (current) => (current ?? 0) + 1, 60_000)).toBe(1);
    expect(await store.update<number>('worse', (current) => (current ?? 0) + 1, 60_000)).toBe(1);
    expect(await store.get('bad')).toBe(1);
    expect(String(await raw(probe, ['GET', `${name}:garbled:{bad}`]))).toMatch(/\|1$/);
  });

  it('runs reducers that are pure, as checkedStore checks over Redis', async () => {
    const store = checkedStore({ inner: redisStore({ client: await open(), prefix: `${name}:checked:`, timeoutMs }) });
    await Promise.all(Array.from({ length: 20 }, () => store.update<number[]>('log', (current) => [...(current ?? []), 1], 60_000)));
    expect(await store.get<number[]>('log')).toHaveLength(20);
    store.assertClean();
  });

  it('fails only the caller whose reducer throws, and writes nothing for it', async () => {
    const store = redisStore({ client: await open(), prefix: `${name}:throw:`, timeoutMs });
    const boom = new Error('reducer failed');
    const [a, b, c] = await Promise.allSettled([
      store.update<number>('k', (current) => (current ?? 0) + 1, 60_000),
      store.update<number>('k', () => {
        throw boom;
      }, 60_000),
      store.update<number>('k', (current) => (current ?? 0) + 1, 60_000),
    ]);
    expect([a, c].map((result) => (result as PromiseFulfilledResult<number>).value)).toEqual([1, 2]);
    expect(b).toMatchObject({ status: 'rejected', reason: boom });
  });

  it('fails only the caller whose value cannot be written, and still sends the other records of its turn', async () => {
    const store = redisStore({ client: await open(), prefix: `${name}:unwritable:`, timeoutMs });
    // JSON cannot write a BigInt: the write fails as it is prepared, with the turn's other writes queued beside it.
    const [bad, good] = await Promise.allSettled([
      store.update<unknown>('bad', () => 1n, 60_000),
      store.update<number>('good', (current) => (current ?? 0) + 1, 60_000),
    ]);
    expect(bad).toMatchObject({ status: 'rejected', reason: { code: 'STORE_UNAVAILABLE' } });
    expect(good).toEqual({ status: 'fulfilled', value: 1 });
    await expect(store.update<number>('bad', (current) => (current ?? 0) + 1, 60_000)).resolves.toBe(1);
  });

  it('reloads its script when the server lost it', async () => {
    const client = await open();
    const store = redisStore({ client, prefix: `${name}:noscript:`, timeoutMs });
    await store.update('k', () => 1, 60_000);
    const probe = await connect(redis.url);
    opened.push(probe);
    await raw(probe, ['SCRIPT', 'FLUSH']);
    expect(await store.update<number>('k', (current) => (current ?? 0) + 1, 60_000)).toBe(2);
  });

  it('offers a clock on Redis time, measured as it writes', async () => {
    const store = redisStore({ client: await open(), prefix: `${name}:clock:`, timeoutMs });
    await store.syncClock();
    await store.update('k', () => 1, 1_000);
    // Same machine: the offset is the measurement's own error, far below a second.
    expect(Math.abs(store.clock.offsetMs)).toBeLessThan(1_000);
    expect(store.clock.uncertaintyMs).toBeLessThan(1_000);
    const first = store.clock.now();
    expect(store.clock.now()).toBeGreaterThanOrEqual(first);
  });

  it('fails with STORE_UNAVAILABLE at once when the client is not connected, and recovers when it is', async () => {
    const client = await connect(redis.url);
    const store = redisStore({ client, prefix: `${name}:down:`, timeoutMs });
    await client.quit();
    await expect(store.update('k', () => 1, 1_000)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await expect(store.get('k')).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
  });

  it('gives up on a Redis that does not answer within timeoutMs, and works again once it does', async () => {
    const store = redisStore({ client: await open(), prefix: `${name}:paused:`, timeoutMs: 50 });
    const probe = await open();
    // Redis holds every write command (scripts included) for 1.5 s: the store must not wait for it.
    await raw(probe, ['CLIENT', 'PAUSE', '1500', 'WRITE']);
    await expect(store.update('k', () => 1, 60_000)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await raw(probe, ['CLIENT', 'UNPAUSE']);
    const slow = redisStore({ client: await open(), prefix: `${name}:paused:`, timeoutMs });
    expect(await slow.update<number>('k', (current) => (current ?? 0) + 1, 60_000)).toBeGreaterThanOrEqual(1);
  });
});
