import { StoreError, type Store, type TimeToLive } from '@sluice/core';
import { ValidationError } from '@sluice/core';
import { kOwnDeadline } from '@sluice/core/kit';
import { redisClock, type RedisClock } from './redis-clock.js';
import { redisCommands, type RedisCommands } from './redis-client.js';
import { resolveOptions, type RedisStoreOptions } from './options.js';
import { casBatcher } from './cas-batcher.js';
import { Lane, type LaneContext, parseRecord, recordBar } from './record-lane.js';
import { compareAndSet } from './scripts.js';
import { deadlineQueue } from './store-deadline.js';

/*
 * How an update stays one round trip. The process remembers, per record,
 * the last `<version>|<json>` it wrote or read. An update runs the reducer
 * on that value as its write is about to go (at the end of the turn of the
 * event loop, so a decision that reads the time reads it then, not before
 * a long task) and sends one EVALSHA: "if the version is still this, write
 * that". When no other process wrote in between, that is the whole
 * decision. When one did, the script answers with the current record, the
 * reducer runs again on it, and the next attempt usually wins: a conflict
 * costs a round trip, never a wrong answer.
 *
 * Updates of one record in one process never conflict with each other:
 * they queue on the record's lane, and everything that queued while a
 * write was in flight goes out as the next single write, each reducer
 * applied to the previous one's result in arrival order, each caller
 * answered with its own result. That is the same sequence of states the
 * memory store would go through, written atomically, so 32 concurrent
 * calls in one process cost about two round trips, not 32 retrying ones.
 * Writes to different records that are ready in the same turn of the
 * event loop go out together, as script calls of up to 16 keys each
 * (cas-batcher.ts): a command per 16 decisions, not one per decision.
 *
 * Never a hang. A batch's callers wait at most `timeoutMs` of Redis's time
 * from the moment its first write goes out, conflict retries included,
 * measured so that the process's own stalls do not count (store-deadline.ts);
 * a caller queued behind a batch in flight waits for that one first, which
 * is itself bounded. A client that is not connected fails the call at once;
 * a write that times out leaves the record's remembered version dropped,
 * because it may still land later (then it lands as a whole batch,
 * atomically, and only if nothing else wrote first).
 */

/** A Redis-backed {@link Store}, with the clock that reads Redis's time. */
export interface RedisStore extends Store {
  /**
   * Redis's time as a {@link RedisClock}: pass it to `createPipeline({ clock })`
   * on every instance so windows, circuits and budget periods compare times
   * from one clock, not from each process.
   */
  readonly clock: RedisClock;
  /**
   * The `timeoutMs` option: how long Redis may take to answer a write,
   * counted from when the write goes (store-deadline.ts). The store bounds
   * its own calls (it is marked `kOwnDeadline`), so middleware's
   * `keyedState` sets no timer of its own around them.
   */
  readonly timeoutMs: number;
  readonly [kOwnDeadline]: true;
  /** Measures the clock's offset now with a `TIME` round trip (the store does it at creation, then on one command in 16). */
  syncClock(): Promise<void>;
}

/** Reads an integer reply, which node-redis and ioredis give as number or string. */
const int = (value: unknown): number => Number(value);

/**
 * A {@link Store} on Redis or Valkey, for rate limits, circuits and
 * budgets shared by every instance of a service. Updates are atomic
 * compare-and-set over the same pure reducers the memory store runs, one
 * round trip when the process holds the record's latest version; every
 * record has a TTL and its own hash tag (`{sluice:ratelimit:global}`), so
 * it works on a Redis Cluster too.
 *
 * @param options - `client` (node-redis or ioredis, connected), `prefix`, `timeoutMs`, `maxEntries`
 * @throws ValidationError when `client` is neither a node-redis nor an ioredis client, or an option is out of range
 * @example
 * ```ts
 * const client = await createClient({ url: process.env.REDIS_URL }).connect();
 * const store = redisStore({ client });
 * const llm = createPipeline({ transport, store, clock: store.clock }).use(rateLimit({ rpm: 100 }));
 * ```
 */
export function redisStore(options: RedisStoreOptions): RedisStore {
  const { client, prefix, timeoutMs, maxEntries } = resolveOptions(options);
  const commands = redisCommands(client);
  if (!commands) throw new ValidationError('redisStore.client', 'must be a node-redis (v5) or ioredis (v5) client');
  const clock = redisClock();
  let calls = 0;
  const cas = casBatcher(commands, {
    oneKeyPerCall: commands.cluster,
    // The clock is sampled on one command in 16 (and until it has a first sample): TIME costs the script a call.
    wantsTime: () => (calls++ & 15) === 0 || clock.uncertaintyMs === Infinity,
    onTime: (sentAt, receivedAt, serverMs) => clock.sample(sentAt, receivedAt, serverMs),
  });
  // One timer for the deadline of every call to Redis (store-deadline.ts), not one set and cleared per call.
  const deadlines = deadlineQueue(timeoutMs);
  const instance = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  let written = 0;

  const unavailable = (message: string, cause?: unknown) =>
    new StoreError('redis', message, cause === undefined ? {} : { cause });
  const timedOut = () => unavailable(`Redis did not answer within ${timeoutMs} ms`);

  const context: LaneContext = {
    cas,
    deadlines,
    nextVersion: () => `${instance}.${(written++).toString(36)}`,
    timedOut,
    unavailable,
  };

  /**
   * Every record this process remembers or has updates queued on, at most
   * `maxEntries` of them (more only while that many have writes in
   * flight). Past the bound the oldest goes, unless it was used since the
   * hand last passed it or has a write in flight (a second chance, in
   * insertion order): close to least recently used, without moving a
   * record in the map on every decision.
   */
  const lanes = new Map<string, Lane>();
  const evict = () => {
    let steps = lanes.size;
    for (const [key, lane] of lanes) {
      if (steps-- <= 0) return;
      lanes.delete(key);
      if (lane.inFlight || lane.used) {
        lane.used = false;
        lanes.set(key, lane);
        continue;
      }
      return;
    }
  };
  const laneOf = (key: string): Lane => {
    let lane = lanes.get(key);
    if (lane) {
      lane.used = true;
      return lane;
    }
    lane = new Lane(key);
    lanes.set(key, lane);
    if (lanes.size > maxEntries) evict();
    return lane;
  };

  /** Races a single command against the store's deadline (store-deadline.ts). */
  const within = <T>(promise: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const running = deadlines.after(() => reject(timedOut()));
      promise.then(
        (value) => {
          running.cancel();
          resolve(value);
        },
        (error: unknown) => {
          running.cancel();
          reject(error instanceof StoreError ? error : unavailable('Redis failed', error));
        },
      );
    });

  const redisKey = (key: string) => `${prefix}{${key}}`;

  const update = <T>(key: string, reducer: (current: T | undefined) => T, ttlMs?: TimeToLive<T>): Promise<T> => {
    if (!commands.ready()) return Promise.reject(unavailable('the Redis client is not connected'));
    const lane = laneOf(redisKey(key));
    return new Promise<T>((resolve, reject) => {
      lane.push(context, {
        reducer: reducer as (current: unknown) => unknown,
        ttl: ttlMs as TimeToLive<unknown> | undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
        result: undefined,
        failed: false,
      });
    });
  };

  const syncClock = async () => {
    if (!commands.ready()) throw unavailable('the Redis client is not connected');
    const sentAt = Date.now();
    const reply = (await within(commands.command(['TIME']))) as unknown[];
    clock.sample(sentAt, Date.now(), int(reply[0]) * 1000 + int(reply[1]) / 1000);
  };
  // A first offset, and the script loaded, before the first decision: a first call that has to load it
  // costs two round trips and a compile, which can exceed a middleware's store timeout. Either may fail
  // (a client still connecting); the first write then measures the clock and loads the script itself.
  syncClock().catch(() => undefined);
  if (commands.ready()) commands.command(['SCRIPT', 'LOAD', compareAndSet]).catch(() => undefined);

  return {
    clock,
    timeoutMs,
    [kOwnDeadline]: true,
    syncClock,
    update,
    async get<T>(key: string): Promise<T | undefined> {
      if (!commands.ready()) throw unavailable('the Redis client is not connected');
      const full = redisKey(key);
      const raw = await within(commands.command(['GET', full], full, true));
      const lane = lanes.get(full);
      // A lane with a write in flight knows better than a read that may have passed it.
      if (lane && !lane.inFlight) lane.remember(raw);
      const bar = recordBar(raw);
      return bar === -1 ? undefined : (parseRecord((raw as string).slice(bar + 1)) as T | undefined);
    },
    async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
      await update<T>(key, () => value, ttlMs);
    },
    async delete(key: string): Promise<void> {
      await update<null>(key, () => null, 0);
    },
  };
}
