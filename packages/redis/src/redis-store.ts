import { StoreError, type Store, type TimeToLive } from '@sluice/core';
import { ValidationError } from '@sluice/core';
import { kOwnDeadline } from '@sluice/core/kit';
import { redisClock, type RedisClock } from './redis-clock.js';
import { redisCommands, type RedisCommands } from './redis-client.js';
import { resolveOptions, type RedisStoreOptions } from './options.js';
import { casBatcher, type CasOutcome, type CasRequest, type CasSend, type CasWrite } from './cas-batcher.js';
import { compareAndSet } from './scripts.js';
import { deadlineQueue, type StoreDeadline } from './store-deadline.js';

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

interface Pending {
  reducer: (current: unknown) => unknown;
  ttl: TimeToLive<unknown> | undefined;
  resolve(value: unknown): void;
  reject(error: unknown): void;
  settled: boolean;
  group: Group | undefined;
}

/** The callers of one batch: when the last of them gave up waiting, so does the write in flight. */
interface Group {
  left: number;
  /** Ends the wait of the attempt in flight. */
  wake(reply: typeof kAbandoned): void;
  /** Runs from the batch's first write to Redis until it is done. */
  deadline: StoreDeadline | undefined;
}

const kAbandoned = Symbol('abandoned');
/** Every reducer of the batch threw: nothing to write. */
const kNothing = Symbol('nothing');

interface Lane {
  queue: Pending[];
}

interface Known {
  version: string;
  json: string;
  /**
   * `json` parsed, once something needed it (or the value it was written
   * from): reducers get it as the memory store gives them its values, to
   * read, never to change; parsing it again for every decision was a fifth
   * of a decision's CPU.
   */
  value?: unknown;
}

const maxConflicts = 64;
const maxBatch = 512;

/** Splits `<version>|<json>`; undefined for an absent or foreign value. */
function parseRecord(raw: unknown): Known | undefined {
  if (typeof raw !== 'string' || raw === '') return undefined;
  const bar = raw.indexOf('|');
  return bar < 1 ? undefined : { version: raw.slice(0, bar), json: raw.slice(bar + 1) };
}

/** Reads an integer reply, which node-redis and ioredis give as number or string. */
const int = (value: unknown): number => Number(value);

/** What an {@link Attempt} needs of its store. */
interface AttemptInternals {
  known: Map<string, Known>;
  /** A version no other write of any process has used. */
  nextVersion(): string;
  startDeadline(batch: Pending[], group: Group): void;
}

type Reply = CasOutcome | typeof kAbandoned | typeof kNothing;

/**
 * One attempt at writing a batch of one record's updates: the request the
 * batcher prepares and sends, and what it computed. An object with methods,
 * not closures: at tens of thousands of decisions a second, the closures of
 * a request per write were a fair share of a decision's garbage.
 */
class Attempt implements CasRequest {
  outcomes: Array<{ value: unknown } | { error: unknown }> = [];
  version = '';
  json = '';
  ttlArg = '';
  value: unknown = undefined;
  private answer: (reply: Reply) => void = () => undefined;
  private fail: (error: unknown) => void = () => undefined;

  constructor(
    private readonly store: AttemptInternals,
    private readonly key: string,
    private readonly batch: Pending[],
    private readonly group: Group,
    private readonly fresh: boolean,
  ) {}

  /** Queues the attempt; resolves with the script's outcome, or when there is nothing to send. */
  run(cas: CasSend): Promise<Reply> {
    return new Promise<Reply>((resolve, reject) => {
      if (this.group.left === 0) return resolve(kAbandoned);
      this.answer = resolve;
      this.fail = reject;
      this.group.wake = resolve;
      cas(this);
    });
  }

  /** Runs the reducers over the remembered value: as the write is about to go, not when it queued. */
  prepare(): CasWrite | undefined {
    if (this.group.left === 0) {
      this.answer(kAbandoned);
      return undefined;
    }
    const base = this.store.known.get(this.key);
    let value: unknown = base ? ('value' in base ? base.value : (base.value = JSON.parse(base.json))) : undefined;
    const outcomes: Array<{ value: unknown } | { error: unknown }> = (this.outcomes = []);
    let ttl: TimeToLive<unknown> | undefined;
    let changed = false;
    for (const pending of this.batch) {
      try {
        const next = pending.reducer(value);
        outcomes.push({ value: next });
        value = next;
        ttl = pending.ttl;
        changed = true;
      } catch (error) {
        // A reducer that throws fails its own caller and writes nothing, as in the memory store.
        outcomes.push({ error });
      }
    }
    if (!changed) {
      this.answer(kNothing);
      return undefined;
    }
    const ttlMs = typeof ttl === 'function' ? ttl(value) : ttl;
    const ttlArg = (this.ttlArg = ttlMs === undefined || !(ttlMs >= 0) ? '' : String(Math.ceil(ttlMs)));
    const json = (this.json = JSON.stringify(value) ?? 'null');
    this.value = value;
    // Unchanged: no new version, so other processes' remembered one stays good and they do not conflict.
    if (base && json === base.json && ttlArg !== '' && Number(ttlArg) > 0) {
      if (this.fresh) {
        this.answer(kNothing);
        return undefined;
      }
      this.version = base.version;
      return { key: this.key, expected: base.version, record: '', ttl: ttlArg };
    }
    this.version = this.store.nextVersion();
    return { key: this.key, expected: base?.version ?? '', record: `${this.version}|${json}`, ttl: ttlArg };
  }

  sent(): void {
    this.store.startDeadline(this.batch, this.group);
  }

  resolve(outcome: CasOutcome): void {
    this.answer(outcome);
  }

  reject(error: unknown): void {
    this.fail(error);
  }
}

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
  const known = new Map<string, Known>();
  // One timer for the deadline of every call to Redis (store-deadline.ts), not one set and cleared per call.
  const deadline = deadlineQueue(timeoutMs);
  const lanes = new Map<string, Lane>();
  const instance = Math.random().toString(36).slice(2, 10) + Date.now().toString(36);
  let written = 0;

  const remember = (key: string, record: Known | undefined) => {
    known.delete(key);
    if (!record) return;
    known.set(key, record);
    if (known.size > maxEntries) known.delete(known.keys().next().value as string);
  };

  const unavailable = (message: string, cause?: unknown) =>
    new StoreError('redis', message, cause === undefined ? {} : { cause });

  const timedOut = () => unavailable(`Redis did not answer within ${timeoutMs} ms`);

  /** Races a single command against the store's deadline (store-deadline.ts). */
  const within = <T>(promise: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const running = deadline(() => reject(timedOut()));
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

  const settle = (pending: Pending, outcome: { value: unknown } | { error: unknown }) => {
    if (pending.settled) return;
    pending.settled = true;
    if ('error' in outcome) pending.reject(outcome.error);
    else pending.resolve(outcome.value);
    if (pending.group && --pending.group.left === 0) pending.group.wake(kAbandoned);
  };

  const internals: AttemptInternals = {
    known,
    nextVersion: () => `${instance}.${(written++).toString(36)}`,
    startDeadline: (batch, group) => startDeadline(batch, group),
  };

  /**
   * One attempt: the reducers over the remembered value, then the script.
   * True when written; false on a conflict, with the record the script
   * found remembered. `fresh` when the remembered record was just read by
   * the script (a conflict's answer): a batch that leaves it as it is (every
   * request refused, say) is then decided without another round trip, at
   * the moment of that read.
   */
  async function attempt(key: string, batch: Pending[], group: Group, fresh: boolean): Promise<boolean> {
    const current = new Attempt(internals, key, batch, group, fresh);
    const reply = await current.run(cas);
    if (reply === kAbandoned) throw timedOut();
    if (reply === kNothing) {
      // Every reducer threw, or the batch left a record just read as it was: nothing to write.
      batch.forEach((pending, index) => settle(pending, current.outcomes[index] as { value: unknown } | { error: unknown }));
      return true;
    }
    if (!reply.written) {
      remember(key, parseRecord(reply.current));
      return false;
    }
    const { ttlArg } = current;
    remember(key, ttlArg !== '' && Number(ttlArg) <= 0 ? undefined : { version: current.version, json: current.json, value: current.value });
    batch.forEach((pending, index) => settle(pending, current.outcomes[index] as { value: unknown }));
    return true;
  }

  /** Starts the batch's deadline at its first write to Redis (retries run on the same one). */
  const startDeadline = (batch: Pending[], group: Group) => {
    group.deadline ??= deadline(() => {
      const error = timedOut();
      for (const pending of batch) settle(pending, { error });
    });
  };

  async function runBatch(key: string, batch: Pending[]): Promise<void> {
    const group: Group = { left: batch.length, wake: () => undefined, deadline: undefined };
    for (const pending of batch) pending.group = group;
    try {
      for (let conflicts = 0; conflicts < maxConflicts; conflicts++) {
        // Callers whose own time ran out are not applied on a retry.
        const live = group.left === batch.length ? batch : batch.filter((pending) => !pending.settled);
        if (live.length === 0) return;
        if (await attempt(key, live, group, conflicts > 0)) return;
      }
      throw unavailable(`Redis record ${key} changed under ${maxConflicts} attempts in a row`);
    } catch (error) {
      // The write may still land: forget the version so the next update reads what is there.
      known.delete(key);
      const failure = error instanceof StoreError ? error : unavailable('Redis failed', error);
      for (const pending of batch) settle(pending, { error: failure });
    } finally {
      group.deadline?.cancel();
    }
  }

  async function drain(key: string, lane: Lane): Promise<void> {
    while (lane.queue.length > 0) {
      let batch = lane.queue;
      if (batch.length <= maxBatch) lane.queue = [];
      else batch = lane.queue.splice(0, maxBatch);
      // Callers that gave up while queued are left out.
      if (batch.some((pending) => pending.settled)) batch = batch.filter((pending) => !pending.settled);
      if (batch.length > 0) await runBatch(key, batch);
    }
    lanes.delete(key);
  }

  const redisKey = (key: string) => `${prefix}{${key}}`;

  const update = <T>(key: string, reducer: (current: T | undefined) => T, ttlMs?: TimeToLive<T>): Promise<T> => {
    if (!commands.ready()) return Promise.reject(unavailable('the Redis client is not connected'));
    const full = redisKey(key);
    return new Promise<T>((resolve, reject) => {
      const pending: Pending = {
        reducer: reducer as (current: unknown) => unknown,
        ttl: ttlMs as TimeToLive<unknown> | undefined,
        resolve: resolve as (value: unknown) => void,
        reject,
        settled: false,
        group: undefined,
      };
      let lane = lanes.get(full);
      if (lane) {
        lane.queue.push(pending);
        return;
      }
      lane = { queue: [pending] };
      lanes.set(full, lane);
      void drain(full, lane);
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
      const record = parseRecord(await within(commands.command(['GET', full], full, true)));
      if (!lanes.has(full)) remember(full, record);
      return record ? (JSON.parse(record.json) as T) : undefined;
    },
    async set<T>(key: string, value: T, ttlMs?: number): Promise<void> {
      await update<T>(key, () => value, ttlMs);
    },
    async delete(key: string): Promise<void> {
      await update<null>(key, () => null, 0);
    },
  };
}
