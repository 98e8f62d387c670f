import { type ChatCompletion, type CompletionContext, type Middleware, SluiceError, StoreError, type Usage } from '@sluice/core';
import { abortReason, keepsChainRules, keyResolver, toSluiceError, transportStream, untilAborted } from '@sluice/core/kit';
import { requestKey } from './cache-key.js';
import { answerJson, completionEntry, parseEntry, replay, streamEntry, streamEntryBytes } from './cache-entry.js';
import type { CacheStorage } from './cache-storage.js';
import type { CacheStatus } from './events.js';
import { Flight, FlightFailure, type FlightOwner } from './flight.js';
import { FlightTable, keyHash } from './flight-table.js';
import { type CacheOptions, resolveCacheOptions } from './options.js';
import { StreamTee } from './stream-tee.js';
import { utf8Bytes } from './utf8-bytes.js';

/** The `cache` middleware, with the storage it keeps answers in. */
export type CacheMiddleware = Middleware & {
  /** Where answers are kept, under `sluice:cache:<scope>:<key>` (to inspect or clear them). */
  readonly storage: CacheStorage;
};

const namespace = 'sluice:cache:';
const done = Promise.resolve();
/** How often a joined call goes round again after its sender's own abort before sending itself. */
const maxRounds = 3;

/**
 * An exact-match response cache. A cacheable call (by default one with
 * `temperature: 0` or a `seed`) is keyed by the hash of everything in the
 * request that changes the answer, key order ignored; a stored answer is
 * replayed as it came: a completion as a completion, a stream as a stream
 * with the same chunks and boundaries and no wait for the first. Identical
 * calls in flight at once send one upstream request between them (single
 * flight; a stream is teed to all of them). Only a complete answer is
 * stored: an error, a cut or a cancelled stream never is.
 *
 * An answered call sends nothing upstream and costs nothing: `ctx.usage` is
 * what the answer cost when it was bought, `ctx.state.answeredBy` is
 * `'cache'` and `ctx.state.cache` says how it was answered, so `trackCost`
 * records $0 and the saving. Place it just inside `trackCost`, outside
 * everything that spends (trimming, budget, retry, limits).
 *
 * @param options - `ttlMs`, `when`, `key`, `storage`, `ignoreFields`, `timeoutMs`
 * @throws ValidationError naming a bad option (`cache.ttlMs`)
 * @example
 * ```ts
 * const llm = createPipeline({ transport }).use(trackCost()).use(cache({ ttlMs: 3_600_000 })).use(retry());
 * const first = await llm.complete({ model: 'gpt-4.1', temperature: 0, messages });  // upstream
 * const again = await llm.complete({ model: 'gpt-4.1', temperature: 0, messages });  // cache, $0
 * ```
 */
export function cache(options: CacheOptions = {}): CacheMiddleware {
  const config = resolveCacheOptions(options);
  const { storage, ttlMs } = config;
  const scopeOf = keyResolver(config.key, 'cache.key');
  const flights = new FlightTable<Flight>();

  // An in-process storage that answers at once: no promise on the way in or out.
  const sync = storage.getSync && storage.setSync ? { get: storage.getSync.bind(storage), set: storage.setSync.bind(storage) } : undefined;

  const owner: FlightOwner = {
    land(flight) {
      flights.delete(flight);
      flight.land();
    },
    recorded(flight, chunks) {
      const sender = flight.sender as CompletionContext;
      const joined = chunks.join(',');
      const usage = JSON.stringify(sender.usage ?? null);
      const entry = streamEntry(joined, usage, sender.clock.now(), ttlMs);
      write(sender, flight, entry, streamEntryBytes(entry, joined, usage));
    },
  };

  // Not async: a call the cache leaves alone, answers from the LRU or sends
  // on makes no promise of its own (compose turns a throw into a rejection).
  const middleware = keepsChainRules(function cache(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const mode = ctx.tags.cache;
    if (mode === 'off' || (mode !== 'on' && mode !== 'refresh' && !config.when(ctx.request, ctx))) {
      ctx.state.cache = { status: 'bypass' };
      return next();
    }
    const entryKey = requestKey(ctx.request, ctx.stream, ctx.transport.origin, config.ignoreFields);
    // One string for the flights and the storage alike: hashed once, however often it is looked up.
    const key = namespace + scopeOf(ctx) + ':' + entryKey;
    const hash = keyHash(key, namespace.length);
    if (sync && flights.get(key, hash) === undefined) {
      // Nothing is awaited between looking at the flights and leading one: no identical call can slip in.
      if (mode !== 'refresh') {
        let text: string | undefined;
        try {
          text = sync.get(key);
        } catch (error) {
          storeError(ctx, key, 'get', error);
        }
        if (text !== undefined && serve(ctx, text, entryKey)) return done;
      }
      return lead(ctx, next, key, hash, entryKey);
    }
    return joinOrLead(ctx, next, key, hash, entryKey, mode !== 'refresh');
  });

  /** Joins an identical call in flight, reads the storage, or sends the call: the path with promises. */
  async function joinOrLead(
    ctx: CompletionContext,
    next: () => Promise<void>,
    key: string,
    hash: number,
    entryKey: string,
    read: boolean,
  ): Promise<void> {
    for (let round = 0; round < maxRounds; round++) {
      const flight = flights.get(key, hash);
      if (flight) {
        if (await follow(ctx, flight, entryKey)) return;
        continue;
      }
      if (read) {
        read = false;
        const text = sync ? guarded(ctx, key, 'get', () => sync.get(key)) : await bounded(ctx, key, 'get', () => storage.get(key));
        if (serve(ctx, text, entryKey)) return;
        // Another identical call may have started while the storage answered.
        if (!sync && flights.get(key, hash) !== undefined) {
          round--;
          continue;
        }
      }
      break;
    }
    return lead(ctx, next, key, hash, entryKey);
  }

  /** Answers the call from a stored entry, if `text` is one that is still fresh and of the call's kind. */
  function serve(ctx: CompletionContext, text: string | undefined, entryKey: string): boolean {
    if (text === undefined) return false;
    const now = ctx.clock.now();
    const entry = parseEntry(text, ctx.stream, now);
    if (!entry) return false;
    const usage = entry.usage ?? undefined;
    if (ctx.stream) ctx.chunks = replay(entry.chunks ?? [], () => (ctx.usage = usage));
    else ctx.response = entry.response;
    ctx.usage = usage;
    answered(ctx, 'hit', entryKey, now - entry.storedAt, usage);
    return true;
  }

  /** Joins an identical call in flight; false when its sender aborted its own call and this one should go round again. */
  async function follow(ctx: CompletionContext, flight: Flight, entryKey: string): Promise<boolean> {
    flight.join();
    let answer;
    try {
      answer = await untilAborted(ctx, flight.answer);
    } catch (caught) {
      if (caught instanceof FlightFailure) {
        if (caught.own) return false;
        throw caught.error;
      }
      flight.leave();
      throw caught;
    }
    const ageMs = ctx.clock.now() - answer.at;
    if (answer.tee) {
      const tee = answer.tee;
      answered(ctx, 'shared', entryKey, ageMs, undefined);
      // A shared stream's usage arrives with its end, like the stream's own.
      ctx.chunks = tee.subscribe(() => {
        ctx.usage = tee.usage();
        // Not for a call that took over the request's cost from a sender that left early (see StreamTee).
        if (ctx.usage && ctx.state.cache && ctx.state.answeredBy !== undefined) ctx.state.cache.savedUsage = ctx.usage;
      }, ctx);
      return true;
    }
    ctx.response = JSON.parse(answer.response as string) as ChatCompletion;
    ctx.usage = answer.usage === undefined ? undefined : (JSON.parse(answer.usage) as Usage);
    answered(ctx, 'shared', entryKey, ageMs, ctx.usage);
    return true;
  }

  /**
   * Sends the call, leading a flight that identical calls join. Not async:
   * its one promise is the `then` on the call inside (an async function
   * would add its own promise and the frames of its `await`, on every miss).
   */
  function lead(ctx: CompletionContext, next: () => Promise<void>, key: string, hash: number, entryKey: string): Promise<void> {
    const flight = new Flight(key, hash, ctx, owner);
    flights.set(flight);
    ctx.state.cache = { status: 'miss', key: entryKey };
    if (ctx.events.listenerCount('cache-miss') > 0) {
      ctx.events.emit('cache-miss', { id: ctx.id, key: entryKey, model: ctx.request.model, stream: ctx.stream });
    }
    let sent: Promise<void>;
    try {
      sent = next();
    } catch (caught) {
      sent = Promise.reject(caught);
    }
    return sent.then(
      () => landed(ctx, flight),
      (caught: unknown) => {
        // Failed first: the calls that joined hear it before the flight lets go of them.
        flight.fail(toSluiceError(caught), abortReason(ctx) !== undefined);
        owner.land(flight);
        throw caught;
      },
    );
  }

  /** The call inside answered: its answer is shared with the calls that joined, and stored. */
  function landed(ctx: CompletionContext, flight: Flight): void {
    const at = ctx.clock.now();
    if (ctx.stream && ctx.chunks) {
      const tee = new StreamTee(ctx.chunks, 1 + flight.joiners, ctx, flight, config.rawJson, transportStream(ctx));
      ctx.chunks = tee.subscribe();
      flight.succeed(undefined, undefined, tee, at);
    } else if (!ctx.stream && ctx.response) {
      let response: string;
      let usage: string | undefined;
      try {
        // Serialised at once: what is stored and shared is the answer as it came, whatever its caller does to it.
        response = answerJson(ctx.response, config.rawJson);
        usage = ctx.usage === undefined ? undefined : JSON.stringify(ctx.usage);
      } catch (caught) {
        // An answer that cannot be serialised (something inside put a BigInt in it) is not kept, and the flight ends.
        flight.fail(toSluiceError(caught), false);
        owner.land(flight);
        throw caught;
      }
      flight.succeed(response, usage, undefined, at);
      const entry = completionEntry(response, usage, at, ttlMs);
      // Measured whole, which copies it into one string: JSON.stringify's result is a tree of
      // pieces, and one string is what an LRU of thousands of entries should keep (and the GC trace).
      write(ctx, flight, entry, utf8Bytes(entry));
    } else {
      // Answered by something inside that left nothing to keep: nothing to share either.
      flight.fail(new SluiceError('CACHE_NO_ANSWER', 'the call inside the cache produced no answer to share'), true);
      owner.land(flight);
    }
  }

  function answered(ctx: CompletionContext, status: CacheStatus, entryKey: string, ageMs: number, usage: Usage | undefined): void {
    ctx.state.cache = usage ? { status, key: entryKey, ageMs, savedUsage: usage } : { status, key: entryKey, ageMs };
    ctx.state.answeredBy = 'cache';
    if (ctx.events.listenerCount('cache-hit') > 0) {
      ctx.events.emit('cache-hit', {
        id: ctx.id, key: entryKey, model: ctx.request.model, stream: ctx.stream,
        source: status === 'hit' ? 'storage' : 'flight', ageMs, savedUsage: usage,
      });
    }
  }

  /** Stores an entry, then lands the flight: until the entry can be read, identical calls join the flight instead. */
  function write(ctx: CompletionContext, flight: Flight, entry: string, bytes: number): void {
    if (sync) {
      try {
        sync.set(flight.key, entry, ttlMs, bytes);
      } catch (error) {
        storeError(ctx, flight.key, 'update', error);
      }
      owner.land(flight);
      return;
    }
    void bounded(ctx, flight.key, 'update', () => storage.set(flight.key, entry, ttlMs, bytes)).then(() => owner.land(flight));
  }

  /** A storage failure: a `store-error` event (keyed without the namespace), and the call goes on as a miss. */
  function storeError(ctx: CompletionContext, key: string, operation: 'get' | 'update', error: unknown): void {
    ctx.events.emit('store-error', { name: 'cache', key: key.slice(namespace.length), operation, policy: 'open', error, id: ctx.id });
  }

  /** A synchronous storage call; a failure is a `store-error` event and a miss, never the call's error. */
  function guarded<T>(ctx: CompletionContext, key: string, operation: 'get' | 'update', run: () => T): T | undefined {
    try {
      return run();
    } catch (error) {
      storeError(ctx, key, operation, error);
      return undefined;
    }
  }

  /**
   * A storage call within `timeoutMs` (in-process storage gets no timer); a
   * failure is a `store-error` event and a miss, never the call's error.
   */
  async function bounded<T>(ctx: CompletionContext, key: string, operation: 'get' | 'update', run: () => Promise<T>): Promise<T | undefined> {
    try {
      if (storage.inProcess) return await run();
      // Called before the timer is armed, so a storage that throws leaves none behind; one that
      // answers with the value itself rather than a promise is taken at its word, as `await` would.
      const answer = Promise.resolve(run());
      return await new Promise<T>((resolve, reject) => {
        const timer = ctx.clock.setTimeout(
          () => reject(new StoreError('cache', `the cache storage did not answer within ${config.timeoutMs} ms`)),
          config.timeoutMs,
        );
        answer.then(
          (value) => (ctx.clock.clearTimeout(timer), resolve(value)),
          (error: unknown) => (ctx.clock.clearTimeout(timer), reject(error)),
        );
      });
    } catch (error) {
      storeError(ctx, key, operation, error);
      return undefined;
    }
  }

  return Object.assign(middleware, { storage });
}
