import { type AbortFailureReporter, AbortSource } from './abort-source.js';
import type { Clock } from './clock.js';
import type { CompletionContext, SettleListener, Settlement, TransportInfo } from './context.js';
import type { SluiceEmitter } from './events.js';
import type { SluiceState } from './augmentable.js';
import type { ChatCompletion, ChatCompletionChunk, ChatCompletionRequest, Usage } from './schemas.js';
import { SettleScope } from './settlement.js';
import { toSluiceError } from './errors.js';
import type { Store } from './store.js';
import type { EndAware } from './stream-end.js';

let sequence = 0;

/** What a call with nothing to let go of at its end releases. */
export const releaseNothing = (): void => {};
const prefix = `call_${Math.floor(Math.random() * 36 ** 6).toString(36)}`;

/** Something told when a call leaves the calls in flight: an object, so a call that has one makes no closure for it; internal. */
export interface LeaveWatcher {
  left(): void;
}

/** What a call shares with the pipeline that runs it. */
export interface CallEnvironment {
  events: SluiceEmitter;
  clock: Clock;
  store: Store;
  transport: TransportInfo;
}

/**
 * One call's context. A class, so its methods and the lazy `signal` getter
 * live once on the prototype instead of as closures on every call.
 */
export class Call<S extends object = object> implements CompletionContext<S>, AbortFailureReporter {
  readonly id = `${prefix}${(++sequence).toString(36)}`;
  response: ChatCompletion | undefined = undefined;
  chunks: AsyncIterable<ChatCompletionChunk> | undefined = undefined;
  usage: Usage | undefined = undefined;
  responseHeaders: Readonly<Record<string, string>> | undefined = undefined;
  /** Whether the current (last) attempt's request was accepted by the upstream. */
  accepted = false;
  readonly stream: boolean;
  readonly state = {} as SluiceState & S;
  readonly startedAt: number;
  readonly deadline: number | undefined;
  readonly events: SluiceEmitter;
  readonly clock: Clock;
  readonly store: Store;
  readonly transport: TransportInfo;
  /**
   * Aborted by the caller's signal, the deadline or the parent call's
   * abort; read by the transport without making a signal.
   */
  readonly abortSource: AbortSource;
  /** The response the transport produced last, while it is the current one. */
  current: SettleScope | undefined = undefined;
  /** Async listeners still running; the call resolves after them. */
  pending: Promise<void>[] | undefined = undefined;
  /** The pipeline's list of calls in flight, linked through the calls themselves (no Set to hash into). */
  inFlight = false;
  previousInFlight: Call<S> | undefined = undefined;
  nextInFlight: Call<S> | undefined = undefined;
  /** Told once, when the call leaves the calls in flight (for a stream: when it has ended); see lazy-stream.ts. */
  leaveWatcher: LeaveWatcher | undefined = undefined;
  /**
   * A stream handed to its caller with nothing watching it, whose end the
   * pipeline waits for (the stream's own, or that of the upstream stream
   * under a middleware's; see `Pipeline.answered`): it leaves the calls in
   * flight then, or when `close()` aborts it (its request is then torn down).
   */
  unwatchedStream = false;
  /**
   * The last attempt's stream, as the pipeline wrapped the transport's: when
   * a middleware hands the caller a stream of its own that does not say when
   * it ends, the call stays in flight while this one, its upstream request,
   * is read (see `Pipeline.answered`).
   */
  attemptStream: EndAware | undefined = undefined;
  /** Lets go of the caller's signal, the deadline's timer and a parent no pipeline made; {@link releaseNothing} when there are none. */
  release: () => void = releaseNothing;
  private signalCache: AbortSignal | undefined = undefined;
  /** The call's own scope, made when a listener first needs it (most calls have none). */
  private callScope: SettleScope | undefined = undefined;
  /** How the call settled, kept for a scope made afterwards. */
  private settledWith: (() => Settlement) | undefined = undefined;

  constructor(
    public request: ChatCompletionRequest,
    readonly tags: Readonly<Record<string, string>>,
    timeoutMs: number | undefined,
    environment: CallEnvironment,
    parent?: Call,
  ) {
    this.abortSource = new AbortSource(parent?.abortSource, this);
    this.stream = request.stream === true;
    this.events = environment.events;
    this.clock = environment.clock;
    this.store = environment.store;
    this.transport = environment.transport;
    this.startedAt = this.clock.now();
    this.deadline = timeoutMs === undefined ? undefined : this.startedAt + timeoutMs;
  }

  /** The scope of the call as a whole (its final outcome). */
  get scope(): SettleScope {
    if (this.callScope === undefined) {
      this.callScope = new SettleScope(this);
      if (this.settledWith !== undefined) this.callScope.settle(this.settledWith);
    }
    return this.callScope;
  }

  /** Whether anyone listens for the call's final outcome (without making its scope). */
  get hasListeners(): boolean {
    return this.callScope?.hasListeners === true;
  }

  /**
   * Settles the call's scope; returns a promise only when there are
   * listeners to wait for. With no scope yet, only keeps how it settled.
   */
  settle(settlement: () => Settlement): Promise<void> | undefined {
    if (this.callScope !== undefined) return this.callScope.settle(settlement);
    this.settledWith ??= settlement;
    return undefined;
  }

  /** A listener on the call's abort threw: a `listener-error` event; the call's other abort listeners still ran. */
  abortListenerFailed(error: unknown): void {
    this.events.emit('listener-error', { id: this.id, event: 'abort', error });
  }

  get signal(): AbortSignal {
    this.signalCache ??= this.abortSource.toSignal();
    return this.signalCache;
  }

  remainingMs(): number {
    return this.deadline === undefined ? Infinity : this.deadline - this.clock.now();
  }

  onSettled(listener: SettleListener): void {
    const running = (this.current ?? this.scope).add(listener);
    if (running) (this.pending ??= []).push(running);
  }

  /** Runs one listener; a throw becomes a `listener-error` event, never the call's error. */
  runListener(listener: SettleListener, settlement: Settlement): Promise<void> | undefined {
    // Not async: a listener that finishes at once costs no promise, and an
    // async one costs its own and one `then`, not an async frame's too.
    let result: void | Promise<void>;
    try {
      result = listener(settlement);
    } catch (error) {
      this.events.emit('listener-error', { id: this.id, error });
      return undefined;
    }
    if (result === undefined || typeof (result as { then?: unknown }).then !== 'function') return undefined;
    return (result as Promise<void>).then(undefined, (error: unknown) => {
      this.events.emit('listener-error', { id: this.id, error });
    });
  }

  /** Waits for async listeners that were registered after their response settled. */
  drain(): Promise<void> | undefined {
    const pending = this.pending;
    if (!pending) return undefined;
    this.pending = undefined;
    return Promise.all(pending).then(() => this.drain());
  }
}

/**
 * Calls `listener` when the call is aborted (by its caller or its
 * deadline) without creating `ctx.signal`, which costs a call several
 * microseconds; returns the unsubscribe. Falls back to `ctx.signal` for a
 * context not made by a pipeline. Use it (and {@link abortReason}) on a
 * middleware's hot path. A listener that throws is reported as a
 * `listener-error` event (`event: 'abort'`) and the call's other abort
 * listeners (its attempt among them) still run; one called at once
 * because the call is already aborted throws to its caller.
 *
 * @param ctx - the call
 * @param listener - runs once, at once if the call is already aborted
 * @example
 * ```ts
 * const unwatch = onAbort(ctx, () => queue.remove(waiter));
 * ```
 */
export function onAbort(ctx: Pick<CompletionContext, 'signal'>, listener: () => void): () => void {
  const source = ctx instanceof Call ? ctx.abortSource : ctx.signal;
  if (source.aborted) {
    listener();
    return () => {};
  }
  source.addEventListener('abort', listener);
  return () => source.removeEventListener('abort', listener);
}

/**
 * Why the call was aborted (a SluiceError: `ABORTED`, or `TIMEOUT` with
 * phase `deadline`), or `undefined` while it runs; reads no `ctx.signal`.
 *
 * @param ctx - the call
 * @example
 * ```ts
 * const reason = abortReason(ctx);
 * if (reason !== undefined) throw reason;
 * ```
 */
export function abortReason(ctx: Pick<CompletionContext, 'signal'>): unknown {
  const source = ctx instanceof Call ? ctx.abortSource : ctx.signal;
  return source.aborted ? source.reason : undefined;
}

const ignore = () => {};

/**
 * Lets a call made for another (`run(request, { parent })`, a router's
 * hop) outlive its parent: from now on the parent's abort, and the
 * deadline it inherited from it, no longer end it; its own signal, its
 * own `timeoutMs` and its pipeline's `close()` still do. For a middleware
 * that hands the call's stream to others once the call it was made for
 * leaves (a cache's single flight over a router), which then owes the
 * stream a `return()` when its last reader leaves.
 *
 * @param ctx - the call made for another
 * @returns whether it now outlives its parent: false for a call aborted
 *   already, one whose parent no pipeline made, or one made for nobody
 * @example
 * ```ts
 * const hop = await inner.run(ctx.request, { parent: ctx });
 * if (outliveParent(hop)) shareWithOthers(hop.chunks);
 * ```
 */
export function outliveParent(ctx: CompletionContext): boolean {
  // The abort source knows whether it follows a parent (a pipeline's call) and is not aborted yet.
  return ctx instanceof Call && ctx.abortSource.detach();
}

/**
 * `promise`, or the call's abort if that comes first, as the call's typed
 * reason (`ABORTED`, or `TIMEOUT` with phase `deadline`). For a middleware
 * or transport that waits on code it does not own (a model, a summariser,
 * another call's answer) and cannot trust to hear `ctx.signal`: the call
 * still ends at its deadline. The promise is then left, and its rejection
 * with it: never an unhandled one.
 *
 * @param ctx - the call
 * @param promise - what the call waits on (a value is taken as it is)
 * @example
 * ```ts
 * const summary = await untilAborted(ctx, summarize(dropped, ctx));
 * ```
 */
export function untilAborted<T>(ctx: Pick<CompletionContext, 'signal'>, promise: T | PromiseLike<T>): Promise<T> {
  // A value, not a promise (a callback typed async that answered at once): nothing to wait on.
  if (!isThenable(promise)) return Promise.resolve(promise);
  return raceAbort(ctx instanceof Call ? ctx.abortSource : ctx.signal, promise);
}

/** What {@link raceAbort} watches: an AbortSignal, or core's own AbortSource. */
interface Abortable {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', listener: () => void): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

/**
 * `promise`, or `source`'s abort (its reason as a SluiceError) if that comes
 * first; internal. The promise is then left, its rejection with it (never
 * an unhandled one), and a value it resolves with later goes to `letGo`
 * (a response whose body must be cancelled, say).
 *
 * @param source - a call's abort source or signal, or an attempt's
 * @param promise - what is waited on
 * @param letGo - given a value that came after the abort
 */
export function raceAbort<T>(source: Abortable, promise: PromiseLike<T>, letGo: (late: T) => void = ignore): Promise<T> {
  if (source.aborted) {
    promise.then(letGo, ignore);
    return Promise.reject(toSluiceError(source.reason));
  }
  return new Promise<T>((resolve, reject) => {
    let over = false;
    const aborted = () => {
      over = true;
      reject(toSluiceError(source.reason));
    };
    source.addEventListener('abort', aborted);
    promise.then(
      (value) => {
        source.removeEventListener('abort', aborted);
        if (over) letGo(value);
        else resolve(value);
      },
      (error: unknown) => {
        source.removeEventListener('abort', aborted);
        reject(error);
      },
    );
  });
}

function isThenable<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as PromiseLike<T> | null)?.then === 'function';
}
