import { afterIo } from './after-io.js';
import type { StoreErrorPolicy } from './augmentable.js';
import type { Clock } from './clock.js';
import type { CompletionContext } from './context.js';
import { StoreError, ValidationError } from './errors.js';
import type { SluiceEmitter } from './events.js';
import { type InPlaceReducer, kInProcess, kOwnDeadline, kUpdateNow, memoryStore, type RecordSlot, type Store, type TimeToLive, type UpdateNowHook } from './store.js';

/**
 * What a stateful middleware's state is keyed by, the same vocabulary in
 * every package: one state for all calls (`'global'`), one per model
 * (`'model'` → `model:gpt-4.1`), one per upstream and model
 * (`'origin-model'` → `https://api.x/v1|gpt-4.1`), one per value of a
 * caller's tag (`{ tag: 'tenant' }` → `tenant:acme`; calls without the tag
 * share `tenant:` plus `missing`, default empty), or your own function.
 */
export type KeyOption =
  | 'global'
  | 'model'
  | 'origin-model'
  | { tag: string; missing?: string }
  | ((ctx: CompletionContext) => string);

/**
 * Turns a {@link KeyOption} into a function of the call.
 *
 * @param option - the user's option
 * @param field - the option's name for errors (`breaker.key`)
 * @throws ValidationError when the option is none of the forms; the
 *   returned function throws it when a custom key function returns a
 *   non-string or an empty string
 */
export function keyResolver(option: KeyOption, field: string): (ctx: CompletionContext) => string {
  if (option === 'global') return () => 'global';
  if (option === 'model') return (ctx) => `model:${ctx.request.model}`;
  if (option === 'origin-model') {
    // Most calls go to the origin and model the last one did: its key is
    // reused rather than built again (the default key of breaker and limiter).
    let origin: string | undefined;
    let model: string | undefined;
    let key = '';
    return (ctx) => {
      if (ctx.transport.origin !== origin || ctx.request.model !== model) {
        origin = ctx.transport.origin;
        model = ctx.request.model;
        key = `${origin}|${model}`;
      }
      return key;
    };
  }
  if (typeof option === 'function') {
    return (ctx) => {
      const key = option(ctx);
      if (typeof key !== 'string' || key === '') throw new ValidationError(field, 'must return a non-empty string');
      return key;
    };
  }
  if (typeof option === 'object' && option !== null && typeof option.tag === 'string' && option.tag !== '') {
    const { tag, missing = '' } = option;
    return (ctx) => `${tag}:${ctx.tags[tag] ?? missing}`;
  }
  throw new ValidationError(field, "must be 'global', 'model', 'origin-model', { tag } or a function");
}

/** Options of {@link keyedState}. */
export interface KeyedStateOptions {
  /** The middleware's name: its records live under `sluice:<name>:` and its events and errors name it. */
  name: string;
  /** The user's key option; `defaultKey` when undefined. */
  key?: KeyOption | undefined;
  defaultKey: KeyOption;
  /** The key option's name in errors (`breaker.key`). */
  field: string;
  /** A store of the middleware's own; else each call's `ctx.store` (the pipeline's). */
  store?: Store | undefined;
  /** What a store failure does to a call (default `open`). */
  onStoreError?: StoreErrorPolicy | undefined;
  /**
   * Longest a store call may take before it counts as failed: this option,
   * else the store's own `timeoutMs`, else 50 ms. In-process stores
   * (`memoryStore`) answer synchronously and get no timer; without this
   * option, neither do stores that bound their own calls (marked with
   * `kOwnDeadline`, as `redisStore` is).
   */
  timeoutMs?: number | undefined;
}

/** Options of {@link KeyedState.update}. */
export interface KeyedUpdateOptions<T> {
  /** When the record expires after this write: every record does, so idle keys cost nothing. */
  ttlMs: TimeToLive<T>;
  /**
   * `admit` (default): deciding whether a call goes ahead, where policy
   * `closed` refuses it. `settle`: recording an outcome, where a store
   * failure is reported and never replaces the call's own result.
   */
  phase?: 'admit' | 'settle';
  /**
   * On a store that is not in process (Redis), start the write only after
   * the I/O that is due now ({@link afterIo}): for a write nobody on the
   * call's way waits for, such as a stream's success counted at its
   * headers, so that the stream's first chunk goes on first. The reducer
   * runs then: it should use the time read when the write was asked for,
   * not read the clock itself. An in-process store writes at once either way.
   */
  afterIo?: boolean;
  /**
   * `ctx.clock.now()` as the caller just read it for this update: an
   * in-process store on that same clock uses it rather than reading the
   * clock again (a clock read is a fair share of a keyed update's cost).
   * Any other store, or a store on another clock, ignores it.
   */
  now?: number;
  /**
   * The record's whole key, `namespace + key`, when the caller keeps it
   * (made once per key rather than once per call): the store's Map then
   * finds the very string it holds, compared by identity and hashed once,
   * where a string made afresh is hashed and compared character by
   * character on every update.
   */
  recordKey?: string;
  /**
   * Where the caller keeps the memory store's note of the record, when it
   * keeps an object per key anyway (with `recordKey`): the next update of
   * the record then skips the store's lookup, which over many keys reads
   * memory no cache holds. The object gets two fields, `slotOwner` and
   * `slotEntry`, that only the store writes ({@link RecordSlot}); declare
   * them on it, starting `undefined`, so that its shape does not change.
   * Any other store ignores it.
   */
  slot?: RecordSlot;
  /**
   * The reducer may change a record in place ({@link InPlaceReducer}): it
   * promises that every value it returns shares no object with anything
   * another holds (the value it was given included, unless told it may
   * change it). On the memory store, a record last written by such a
   * reducer is then handed to the next one with `inPlace` set: changed
   * where it is, rather than copied, on every write. Any other record (a
   * `store.set`, another reducer's write), and any other store, is given
   * without it, and the reducer must stay pure.
   */
  inPlace?: boolean;
}

/** One middleware's keyed records in a store: see {@link keyedState}. */
export interface KeyedState {
  /** `sluice:<name>:`, the prefix of every record. */
  readonly namespace: string;
  /** The call's key under the middleware's key option (without the namespace). */
  keyOf(ctx: CompletionContext): string;
  /** The store calls use: the middleware's own, else the call's, else the last call's. */
  storeFor(ctx?: CompletionContext): Store;
  /**
   * Applies a pure `reducer` to the record at `key` atomically and returns
   * the new value; on a store failure, emits `store-error` and applies the
   * policy: `open` resolves `undefined`, `closed` rejects with
   * `STORE_UNAVAILABLE` (in phase `settle`, it too resolves `undefined`),
   * `memory` applies the reducer to in-process state instead.
   *
   * With `options.inPlace`, on the memory store, a record the last such
   * reducer wrote is given with `true` as the second argument: the reducer
   * runs once, on the record itself, and may change it and return it
   * instead of a copy ({@link InPlaceReducer}). It must then not throw
   * after changing it.
   */
  update<T>(
    ctx: CompletionContext | undefined,
    key: string,
    reducer: InPlaceReducer<T>,
    options: KeyedUpdateOptions<T>,
  ): Promise<T | undefined>;
  /**
   * {@link KeyedState.update}, answered at once where the store answers
   * in-process (the memory store): the new value itself, or `undefined`
   * as `update` would resolve it, rather than a promise. Any other store,
   * or a failure, gives `update`'s promise. A middleware's hot path can
   * then go on without an await (`if (result instanceof Promise) …`),
   * which, with calls in flight over the network, costs more than the write.
   */
  updateNow<T>(
    ctx: CompletionContext | undefined,
    key: string,
    reducer: InPlaceReducer<T>,
    options: KeyedUpdateOptions<T>,
  ): T | undefined | Promise<T | undefined>;
  /** Reads a record, outside the admission path (health, reports); failures follow the policy as in `settle`. */
  get<T>(key: string, ctx?: CompletionContext): Promise<T | undefined>;
  /** Deletes a record (manual resets). */
  delete(key: string, ctx?: CompletionContext): Promise<void>;
}

/**
 * The one way stateful middleware keep state: a key option resolved the
 * same way everywhere, records namespaced `sluice:<name>:`, bound to the
 * call's store (or the middleware's own), every write with a TTL, and one
 * rule for store failures: a `store-error` event and the middleware's
 * stated policy, never a hang (store calls time out) and never the
 * upstream's own error replaced.
 *
 * @param options - see {@link KeyedStateOptions}
 * @throws ValidationError for a bad key option
 * @example
 * ```ts
 * const circuits = keyedState({ name: 'breaker', key: options.key, defaultKey: 'origin-model', field: 'breaker.key' });
 * const record = await circuits.update(ctx, circuits.keyOf(ctx), (current) => admit(current, now), { ttlMs: 60_000 });
 * ```
 */
export function keyedState(options: KeyedStateOptions): KeyedState {
  const { name, field, onStoreError: policy = 'open' } = options;
  const keyOf = keyResolver(options.key ?? options.defaultKey, field);
  const namespace = `sluice:${name}:`;
  let lastStore: Store | undefined;
  let lastEvents: SluiceEmitter | undefined;
  let lastClock: Clock | undefined;
  let fallback: Store | undefined;

  const storeFor = (ctx?: CompletionContext): Store => {
    if (ctx) {
      lastStore = ctx.store;
      lastEvents = ctx.events;
      lastClock = ctx.clock;
    }
    const store = options.store ?? ctx?.store ?? lastStore;
    if (store) return store;
    // Outside any call and with no store given: state lives in this process.
    lastStore = memoryStore();
    return lastStore;
  };

  /** Runs a store call within the timeout; in-process stores answer at once and get no timer. */
  const bounded = <T>(store: Store, ctx: CompletionContext | undefined, run: () => Promise<T>): Promise<T> => {
    const clock = ctx?.clock ?? lastClock;
    if ((store as { [kInProcess]?: boolean })[kInProcess] || !clock) return run();
    // A store that bounds its own calls needs no second timer, unless the middleware set a timeout of its own.
    if ((store as { [kOwnDeadline]?: boolean })[kOwnDeadline] === true && options.timeoutMs === undefined) return run();
    const own = (store as { timeoutMs?: unknown }).timeoutMs;
    const timeoutMs = options.timeoutMs ?? (typeof own === 'number' && own > 0 ? own : 50);
    // Called before any timer is armed: a store that throws leaves none behind. One that answers
    // with the value itself rather than a promise (a Map behind three lines of code) is taken at
    // its word, as `await` would take it, instead of failing every call on a missing `then`.
    const answer = run() as T | PromiseLike<T>;
    if (!isThenable(answer)) return Promise.resolve(answer);
    return new Promise<T>((resolve, reject) => {
      let timer = clock.setTimeout(() => {
        // The time is up, but this process may have been the slow one (a cold start compiling, a
        // long task) with the answer already waiting on the socket: look once more after the I/O
        // that is due has run, so that the timeout measures the store and not our own event loop.
        timer = clock.setTimeout(() => reject(new StoreError(name, `the ${name} store did not answer within ${timeoutMs} ms`)), 0);
      }, timeoutMs);
      answer.then(
        (value) => {
          clock.clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clock.clearTimeout(timer);
          reject(error);
        },
      );
    });
  };

  const report = (ctx: CompletionContext | undefined, key: string, operation: 'get' | 'update', error: unknown) => {
    const events = ctx?.events ?? lastEvents;
    events?.emit('store-error', { name, key, operation, policy, error, id: ctx?.id });
  };

  const memory = (ctx?: CompletionContext): Store => {
    fallback ??= memoryStore(ctx?.clock || lastClock ? { clock: (ctx?.clock ?? lastClock) as Clock } : {});
    return fallback;
  };

  // The record key of the last update: a middleware mostly writes the same
  // record, and `namespace + key` made afresh is a new string that the
  // store's Map flattens and hashes again on every write.
  let lastKey: string | undefined;
  let lastRecordKey = '';
  const recordKey = (key: string): string => {
    if (key !== lastKey) {
      lastKey = key;
      lastRecordKey = namespace + key;
    }
    return lastRecordKey;
  };

  /** What a failed update does: a `store-error` event, then the policy. */
  const failed = async <T>(
    ctx: CompletionContext | undefined,
    key: string,
    reducer: InPlaceReducer<T>,
    { ttlMs, phase = 'admit' }: KeyedUpdateOptions<T>,
    error: unknown,
  ): Promise<T | undefined> => {
    report(ctx, key, 'update', error);
    if (policy === 'memory') return memory(ctx).update<T>(namespace + key, reducer, ttlMs);
    if (policy === 'closed' && phase === 'admit') {
      throw error instanceof StoreError ? error : new StoreError(name, `the ${name} store failed`, { cause: error });
    }
    return undefined;
  };

  const updateAsync = async <T>(
    ctx: CompletionContext | undefined,
    store: Store,
    key: string,
    reducer: InPlaceReducer<T>,
    options: KeyedUpdateOptions<T>,
  ): Promise<T | undefined> => {
    const { ttlMs } = options;
    try {
      // An in-process store needs no timeout: called directly, without a closure for `bounded`.
      const whole = options.recordKey ?? recordKey(key);
      if ((store as { [kInProcess]?: boolean })[kInProcess]) return await store.update<T>(whole, reducer, ttlMs);
      return await bounded(store, ctx, () => store.update<T>(whole, reducer, ttlMs));
    } catch (error) {
      return failed(ctx, key, reducer, options, error);
    }
  };

  const updateNow = <T>(
    ctx: CompletionContext | undefined,
    key: string,
    reducer: InPlaceReducer<T>,
    options: KeyedUpdateOptions<T>,
  ): T | undefined | Promise<T | undefined> => {
    const store = storeFor(ctx);
    const hook = (store as { [kUpdateNow]?: UpdateNowHook })[kUpdateNow];
    if (hook === undefined || hook.update !== store.update) {
      if (!options.afterIo) return updateAsync(ctx, store, key, reducer, options);
      return new Promise((resolve) => afterIo(() => resolve(updateAsync(ctx, store, key, reducer, options))));
    }
    try {
      const at = options.now !== undefined && ctx !== undefined && hook.clock === ctx.clock ? options.now : undefined;
      return hook.now<T>(options.recordKey ?? recordKey(key), reducer, options.ttlMs, at, options.inPlace === true, options.slot);
    } catch (error) {
      return failed(ctx, key, reducer, options, error);
    }
  };

  return {
    namespace,
    keyOf,
    storeFor,
    update<T>(
      ctx: CompletionContext | undefined,
      key: string,
      reducer: InPlaceReducer<T>,
      options: KeyedUpdateOptions<T>,
    ): Promise<T | undefined> {
      // The memory store (every write of a pipeline without a shared store):
      // one resolved promise, where an async update over its async update made three.
      const result = updateNow(ctx, key, reducer, options);
      return result instanceof Promise ? result : Promise.resolve(result);
    },
    updateNow,
    async get<T>(key: string, ctx?: CompletionContext): Promise<T | undefined> {
      const store = storeFor(ctx);
      try {
        return await bounded(store, ctx, () => store.get<T>(namespace + key));
      } catch (error) {
        report(ctx, key, 'get', error);
        return policy === 'memory' ? memory(ctx).get<T>(namespace + key) : undefined;
      }
    },
    async delete(key: string, ctx?: CompletionContext): Promise<void> {
      const store = storeFor(ctx);
      await bounded(store, ctx, () => store.delete(namespace + key));
      if (fallback) await fallback.delete(namespace + key);
    },
  };
}

/** Whether a store's answer is a promise (or any thenable) rather than the value itself. */
function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
