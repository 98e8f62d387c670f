import * as z from 'zod/mini';
import { type Clock, systemClock } from './clock.js';
import { checkMiddleware, compose } from './compose.js';
import { abortReason, Call, type CallEnvironment, onAbort, onAbort as watchAbort, raceAbort, releaseNothing } from './call.js';
import type { CompletionContext, Middleware, Settlement } from './context.js';
import type { Transport } from './transport.js';
import { AbortError, ClosedError, DeadlineError, SluiceError, UnexpectedError, ValidationError, toSluiceError } from './errors.js';
import { type CallOptions, callOptionsSchema, plainCallOptions } from './call-options.js';
import { type SluiceEmitter, createEmitter } from './events.js';
import { type ChatCompletion, type ChatCompletionChunk, type ChatCompletionRequest, chatCompletionRequestSchema } from './schemas.js';
import { LazyStream, letGo } from './lazy-stream.js';
import { type SignalFollowers, followCallerSignal } from './caller-signal.js';
import { isEndAware, streamEnd } from './stream-end.js';
import { SettleScope, SettlingStream, type StreamWatch } from './settlement.js';
import { AbortBoundStream } from './abort-bound-stream.js';
import { type Store, memoryStore } from './store.js';
import { parseOptions } from './validate.js';
import { quickRequest } from './quick-request.js';
import { type BatchOptions, type BatchResult, runBatch } from './batch.js';

/** Options of {@link createPipeline}. */
export interface PipelineOptions {
  transport: Transport;
  /** Time source for every middleware (default: the system clock). */
  clock?: Clock;
  /** State shared by stateful middleware (default: an in-memory store). */
  store?: Store;
  /** An emitter to use instead of a new one (to merge several pipelines' events). */
  events?: SluiceEmitter;
  /** Validate requests at the entrance (default true). */
  validateRequests?: boolean;
}

/** Options of `pipeline.close()`. */
export interface CloseOptions {
  /**
   * How long calls in flight may take to finish before they are aborted
   * with `CLOSED` (default 10 s, on the pipeline's clock). After that the
   * transport's connections are closed, and destroyed if they do not close
   * within a further second.
   */
  graceMs?: number;
}

const pipelineOptionsSchema = z.strictObject({
  transport: z.custom<Transport>(
    (value) => typeof (value as Transport | undefined)?.send === 'function',
    'must be a transport with a send(ctx) method',
  ),
  clock: z.optional(z.custom<Clock>((value) => typeof (value as Clock | undefined)?.now === 'function', 'must be a Clock')),
  store: z.optional(z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store')),
  events: z.optional(z.custom<SluiceEmitter>((value) => typeof (value as SluiceEmitter | undefined)?.emit === 'function')),
  validateRequests: z.optional(z.boolean()),
});

/** Answers for keys other libraries use for the same thing. */
const callHints = { timeout: 'use timeoutMs', deadline: 'use timeoutMs', abortSignal: 'use signal', metadata: 'use tags' };

const closeOptionsSchema = z.strictObject({ graceMs: z.optional(z.number().check(z.nonnegative())) });

let compiledRequestSchema: typeof chatCompletionRequestSchema | undefined;
let requestsParsed = 0;

/**
 * The request schema as calls parse it, compiled by zod once 100 requests
 * have been parsed in this process (those `quickRequest` leaves to zod:
 * with tools, images, …). zod/mini interprets object schemas
 * where classic zod JIT-compiled them, which made this parse about four
 * times slower; the compiled parser is faster than
 * either, and hands a request it rejects to the interpreter, so errors are
 * the same. Compiling costs tens of milliseconds once, which a short-lived
 * process (a cold start, a few CLI calls) would never earn back. Never
 * under `jitless`, the setting for runtimes that forbid generated code.
 */
function requestSchema(): typeof chatCompletionRequestSchema {
  if (compiledRequestSchema) return compiledRequestSchema;
  if (++requestsParsed <= 100 || z.config().jitless) return chatCompletionRequestSchema;
  compiledRequestSchema = z.compile(chatCompletionRequestSchema);
  return compiledRequestSchema;
}

/**
 * A plain-object request, copied (shallow) before it is parsed; anything
 * else as it is, for the parse to name what is wrong with it. A request
 * made by spreading another and adding a field (`{ ...defaults,
 * temperature: 0 }`, the usual way to build one) took the compiled parser
 * 2 to 3.5 µs where the same fields in a literal took 0.15 (Node 20,
 * `bench/overhead`); its copy is parsed at the literal's speed, and the
 * copy costs about 0.03 µs. The copy holds what the parse reads of a plain
 * object (its own enumerable fields: what JSON sends), and the caller's
 * object is never changed either way.
 */
const isPlain = (prototype: unknown) => prototype === Object.prototype || prototype === null;

function plainCopy(request: ChatCompletionRequest): ChatCompletionRequest {
  return typeof request === 'object' && request !== null && isPlain(Object.getPrototypeOf(request)) ? { ...request } : request;
}

/**
 * A composed pipeline: add middleware with `use`, then call it. Made by
 * {@link createPipeline}.
 */
export class Pipeline<S extends object = object> {
  readonly events: SluiceEmitter;
  readonly clock: Clock;
  readonly store: Store;
  private readonly transport: Transport;
  /** The transport does not say it ends its work at the call's abort: the pipeline holds it to it. */
  private readonly guardTransport: boolean;
  private readonly environment: CallEnvironment;
  private readonly validateRequests: boolean;
  private readonly middleware: Middleware<S>[] = [];
  private composed: ReturnType<typeof compose<S>> | undefined;
  /**
   * Calls between entering and settling (streams the pipeline watches until
   * they end), for `close()`: a list linked through the calls, which costs a
   * call two writes where a Set would hash it in and out.
   */
  private firstInFlight: Call<S> | undefined;
  private inFlightCount = 0;
  private idleWaiters: Array<() => void> | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: PipelineOptions) {
    const parsed = parseOptions(pipelineOptionsSchema, options, 'createPipeline');
    this.transport = parsed.transport;
    this.guardTransport = this.transport.honoursAbort !== true;
    this.clock = parsed.clock ?? systemClock;
    this.store = parsed.store ?? memoryStore({ clock: this.clock });
    this.events = parsed.events ?? createEmitter();
    this.validateRequests = parsed.validateRequests ?? true;
    this.environment = {
      events: this.events,
      clock: this.clock,
      store: this.store,
      transport: { name: this.transport.name, origin: this.transport.origin },
    };
  }

  /**
   * Appends a middleware; the first one added is the outermost.
   *
   * @throws ValidationError when `middleware` is not a function
   */
  use<T extends object = object>(middleware: Middleware<T>): Pipeline<S & T> {
    checkMiddleware(middleware, 'middleware');
    this.middleware.push(middleware as unknown as Middleware<S>);
    this.composed = undefined;
    return this as unknown as Pipeline<S & T>;
  }

  /**
   * Sends a non-streaming request and resolves to the completion. Takes
   * openai-node's `ChatCompletionCreateParamsNonStreaming` as is, and the
   * completion is assignable to its `ChatCompletion`.
   *
   * @throws ValidationError for a malformed request; the typed upstream error otherwise
   */
  complete(request: ChatCompletionRequest, options?: CallOptions): Promise<ChatCompletion> {
    if (request?.stream === true) return Promise.reject(new ValidationError('stream', 'use stream() for a streaming request'));
    // Not async: a second async frame around run() would cost every call its own promise and frame.
    return this.run(request, options).then(responseOf);
  }

  /**
   * Streams a request's chunks. Nothing is sent until iteration starts,
   * and each iteration sends the request again; `break` or an abort
   * cancels the upstream request. `next()`s asked at once (not only one
   * at a time, as `for await` asks) are answered in order from one request. Takes either of
   * openai-node's `ChatCompletionCreateParams` (it sends `stream: true`
   * itself); each chunk is assignable to its `ChatCompletionChunk`.
   */
  stream(request: ChatCompletionRequest, options?: CallOptions): AsyncIterable<ChatCompletionChunk> {
    return { [Symbol.asyncIterator]: () => new LazyStream(() => this.run({ ...request, stream: true }, options)) };
  }

  /**
   * Runs a request through the pipeline and returns the finished context
   * (for a stream, with `chunks` still to be read).
   */
  run(request: ChatCompletionRequest, options?: CallOptions): Promise<CompletionContext<S>> {
    // Not async: an async function's frame holds a register file for as
    // long as the call is in flight; one `then` with two small handlers holds less.
    let ctx: Call<S>;
    try {
      ctx = this.enter(request, options);
      this.composed ??= compose(this.middleware, unbindOnNext);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.composed(ctx, this.last).then(
      () => {
        const finishing = this.answered(ctx);
        return finishing ? finishing.then(() => ctx) : ctx;
      },
      (caught: unknown) => {
        const error = toSluiceError(caught);
        const finishing = this.failed(ctx, error);
        if (!finishing) throw error;
        return finishing.then(() => Promise.reject(error));
      },
    );
  }

  /** Checks the call and its options and admits it; the call's context, with its deadline armed. */
  private enter(request: ChatCompletionRequest, options: CallOptions | undefined): Call<S> {
    if (this.closing) throw new ClosedError();
    const call = options === undefined ? noOptions : (plainCallOptions(options) ?? parseOptions(callOptionsSchema, options, 'options', callHints));
    const body = this.parseRequest(request);
    // A parent made by a pipeline is followed through the call's abort source, with no listener of its own.
    const parent = call.parent instanceof Call ? (call.parent as Call) : undefined;
    const ctx = new Call<S>(
      body,
      call.tags ? (Object.isFrozen(call.tags) ? call.tags : Object.freeze({ ...call.tags })) : noTags,
      timeoutOf(call),
      this.environment,
      parent,
    );
    this.admit(ctx);
    if (this.events.listenerCount('request') > 0) {
      this.events.emit('request', { id: ctx.id, model: body.model, stream: ctx.stream, tags: ctx.tags });
    }
    ctx.release = this.armDeadline(ctx, call.signal, call.timeoutMs, parent ? undefined : call.parent);
    return ctx;
  }

  /** The chain threw: settles the call with the error; a promise only when there is something to wait for. */
  private failed(ctx: Call<S>, error: SluiceError): Promise<void> | undefined {
    ctx.release();
    return this.finish(ctx, 'error', error, undefined, '', 0);
  }

  /** The chain answered: settles a non-stream call, or watches a stream to its end; a promise only when there is something to wait for. */
  private answered(ctx: Call<S>): Promise<void> | undefined {
    if (!ctx.stream) {
      ctx.release();
      return this.finish(ctx, 'success', undefined, ctx.response, '', 0);
    }
    if (!ctx.chunks) {
      ctx.release();
      const error = new UnexpectedError(new Error('the pipeline finished a stream call without chunks'));
      const finishing = this.finish(ctx, 'error', error, undefined, '', 0);
      return finishing ? finishing.then(() => Promise.reject(error)) : Promise.reject(error);
    }
    // Nobody is left to hear about the response (no middleware wrapped it
    // or registered for it): hand the caller the transport's own stream,
    // as fast as the transport alone.
    if (ctx.chunks instanceof SettlingStream && ctx.chunks.unobserved()) ctx.chunks = ctx.chunks.source;
    if (ctx.release === releaseNothing && !ctx.hasListeners && !ctx.pending && this.events.listenerCount('response') === 0) {
      // Not watched chunk by chunk. A stream that says when it ends (core's own reader and
      // wrappers, the router's, the cache's) keeps the call in flight until then, so close() gives
      // it its grace, then aborts it like any call. A middleware's stream that does not say (an
      // async generator around the transport's) keeps it in flight while the upstream stream under
      // it is read, which is what close() must wait for and stop; with no upstream stream still
      // open, the call is over.
      const reader = ctx.chunks;
      const stream = isEndAware(reader) ? reader : ctx.attemptStream;
      if (stream !== undefined && stream[streamEnd](() => this.settled(ctx))) ctx.unwatchedStream = true;
      else this.settled(ctx);
      return undefined;
    }
    const watch: StreamWatch = {
      wantsText: () => ctx.hasListeners,
      usage: () => ctx.usage,
      abortReason: () => abortReason(ctx),
      now: () => this.clock.now(),
      done: (settlement) => {
        unwatch();
        ctx.release();
        return this.finish(ctx, settlement.outcome, settlement.error, undefined, settlement.streamedText, settlement.chunks);
      },
    };
    // The last attempt's own stream, unread, settles the call too: one layer a chunk, not two.
    const chunks = ctx.chunks;
    const stream = chunks instanceof SettlingStream && chunks.adopt(ctx.current, watch, ctx.startedAt) ? chunks : new SettlingStream(chunks, watch, ctx.startedAt);
    // A stream its caller never reads must not hold what it holds past the call's abort.
    const unwatch = onAbort(ctx, () => stream.abandon());
    ctx.chunks = stream;
    return undefined;
  }

  /**
   * Runs many requests with at most `concurrency` in flight. Resolves to
   * one result per request, in input order; one failure never rejects
   * the batch.
   */
  batch(requests: readonly ChatCompletionRequest[], options: BatchOptions = {}): Promise<BatchResult[]> {
    return runBatch(this as unknown as Pipeline, requests, options);
  }

  /**
   * Stops admitting calls (a later call rejects with a final `CLOSED`
   * error, which no retry repeats and no breaker counts), lets calls in
   * flight finish for `graceMs`, aborts the rest with `CLOSED`, then closes
   * the transport's connections. Never hangs; calling it again returns the
   * same promise.
   *
   * @param options - `graceMs` (default 10 000)
   * @throws ValidationError for a bad option
   */
  close(options: CloseOptions = {}): Promise<void> {
    const { graceMs = 10_000 } = parseOptions(closeOptionsSchema, options, 'close');
    this.closing ??= this.shutdown(graceMs);
    return this.closing;
  }

  private async shutdown(graceMs: number): Promise<void> {
    await this.idleWithin(graceMs);
    // Collected first: an abort may settle a call, which unlinks it.
    const calls: Call<S>[] = [];
    for (let call = this.firstInFlight; call !== undefined; call = call.nextInFlight) calls.push(call);
    for (const call of calls) {
      call.abortSource.abort(new ClosedError('The pipeline closed before this call finished'));
      // Its request is torn down by the abort, and its reader fails with it when next read: a
      // reader nobody reads would otherwise keep the call in flight.
      if (call.unwatchedStream) this.settled(call);
    }
    await this.idleWithin(1_000);
    const closing = this.transport.close?.();
    if (closing && !(await settlesWithin(closing, 1_000, this.clock))) await this.transport.destroy?.();
  }

  /** Resolves when no call is in flight, or after `ms`. */
  private idleWithin(ms: number): Promise<boolean> {
    if (this.inFlightCount === 0) return Promise.resolve(true);
    return settlesWithin(new Promise<void>((resolve) => (this.idleWaiters ??= []).push(resolve)), ms, this.clock);
  }

  private admit(ctx: Call<S>): void {
    ctx.inFlight = true;
    ctx.nextInFlight = this.firstInFlight;
    if (this.firstInFlight) this.firstInFlight.previousInFlight = ctx;
    this.firstInFlight = ctx;
    this.inFlightCount++;
  }

  private settled(ctx: Call<S>): void {
    if (!ctx.inFlight) return;
    ctx.inFlight = false;
    const { previousInFlight: previous, nextInFlight: next } = ctx;
    if (previous) previous.nextInFlight = next;
    else this.firstInFlight = next;
    if (next) next.previousInFlight = previous;
    ctx.previousInFlight = ctx.nextInFlight = undefined;
    const watcher = ctx.leaveWatcher;
    if (watcher !== undefined) {
      ctx.leaveWatcher = undefined;
      watcher.left();
    }
    if (--this.inFlightCount > 0 || !this.idleWaiters) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = undefined;
    for (const wake of waiters) wake();
  }

  private parseRequest(request: ChatCompletionRequest): ChatCompletionRequest {
    // zod builds new objects and arrays, so middleware rewriting the
    // request can never reach the caller's own object.
    // The loose schema returns the caller's fields as they came, so the result has the request's type.
    // The usual request is read by hand; zod parses the rest, and names what is wrong.
    if (this.validateRequests) return quickRequest(request) ?? (parseOptions(requestSchema(), plainCopy(request), 'request') as ChatCompletionRequest);
    return { ...request, messages: [...request.messages] };
  }

  /** Emits `response` and settles the call; returns a promise only when there is something to wait for. */
  private finish(
    ctx: Call<S>,
    outcome: Settlement['outcome'],
    error: SluiceError | undefined,
    response: ChatCompletion | undefined,
    streamedText: string,
    chunks: number,
  ): Promise<void> | undefined {
    this.settled(ctx);
    // Never negative, should the clock step back during the call.
    const durationMs = Math.max(0, this.clock.now() - ctx.startedAt);
    if (this.events.listenerCount('response') > 0) {
      this.events.emit('response', {
        id: ctx.id,
        model: ctx.request.model,
        stream: ctx.stream,
        outcome,
        durationMs,
        usage: ctx.usage,
        errorCode: error?.code,
      });
    }
    const { usage, stream, accepted } = ctx;
    // Written out field by field: a spread with properties added (a clone,
    // then four stores) profiled as the hottest function of a call that
    // anyone listens to, costing more than the rest of the call.
    const settling = ctx.settle(() => ({ outcome, error, usage, response, streamedText, chunks, stream, durationMs, accepted }));
    const draining = ctx.pending ? ctx.drain() : undefined;
    if (!settling && !draining) return undefined;
    return Promise.all([settling, draining]).then(() => ctx.drain());
  }

  /**
   * Links the caller's signal, the deadline and a parent that is not a
   * pipeline's call to the call's abort; returns the cleanup.
   */
  private armDeadline(ctx: Call<S>, signal: AbortSignal | undefined, timeoutMs: number | undefined, parent: CompletionContext | undefined): () => void {
    // The very function answered() compares with: a call with nothing to let go of.
    if (!signal && timeoutMs === undefined && !parent) return releaseNothing;
    const source = ctx.abortSource;
    // The parent's own timer enforces the deadline this call inherits.
    const unlink = parent ? watchAbort(parent, () => source.abort(abortReason(parent))) : noop;
    let followed: SignalFollowers | undefined;
    if (signal?.aborted) source.abort(new AbortError('The call was aborted', { cause: signal.reason }));
    else if (signal) followed = followCallerSignal(signal, source);
    const timer =
      timeoutMs === undefined
        ? undefined
        : this.clock.setTimeout(() => source.abort(new DeadlineError(timeoutMs)), timeoutMs);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      unlink();
      followed?.remove(source);
      if (timer !== undefined) this.clock.clearTimeout(timer);
    };
  }

  /** The innermost step, given to compose once: the transport, with its response's settlement. */
  private readonly last = (ctx: CompletionContext<S>): Promise<void> => this.send(ctx as Call<S>);

  // Not async, for the reason run() is not.
  private send(ctx: Call<S>): Promise<void> {
    const startedAt = this.clock.now();
    let scope: SettleScope;
    try {
      scope = this.attempt(ctx);
    } catch (error) {
      return Promise.reject(error);
    }
    let sending: Promise<void>;
    try {
      sending = this.transport.send(ctx as unknown as CompletionContext);
    } catch (caught) {
      return Promise.reject(this.attemptFailed(ctx, scope, startedAt, toSluiceError(caught)));
    }
    // A transport that does not say it hears the call's abort answers by it all the same: a
    // stream it hands over after the abort is told to stop, since nobody will read it.
    if (this.guardTransport) sending = raceAbort(ctx.abortSource, Promise.resolve(sending), () => stopLate(ctx));
    return Promise.resolve(sending).then(
      () => this.attemptAnswered(ctx, scope, startedAt),
      (caught: unknown) => {
        throw this.attemptFailed(ctx, scope, startedAt, toSluiceError(caught));
      },
    );
  }

  /** Clears what an earlier attempt left on the call; the new attempt's scope. */
  private attempt(ctx: Call<S>): SettleScope {
    ctx.current = undefined;
    ctx.response = undefined;
    ctx.chunks = undefined;
    ctx.attemptStream = undefined;
    ctx.usage = undefined;
    ctx.responseHeaders = undefined;
    ctx.accepted = false;
    const aborted = abortReason(ctx);
    if (aborted !== undefined) throw toSluiceError(aborted);
    return new SettleScope(ctx);
  }

  /** The transport threw: settles the attempt with the error, which it returns. */
  private attemptFailed(ctx: Call<S>, scope: SettleScope, startedAt: number, error: SluiceError): SluiceError {
    // A middleware catching this error and registering a listener then
    // hears about this failed attempt.
    ctx.current = scope;
    scope.settle({
      outcome: 'error', error, usage: undefined, response: undefined, streamedText: '', chunks: 0,
      stream: ctx.stream, durationMs: Math.max(0, this.clock.now() - startedAt), accepted: false,
    });
    return error;
  }

  /** The transport answered: settles a response now, a stream when it ends. */
  private attemptAnswered(ctx: Call<S>, scope: SettleScope, startedAt: number): void {
    ctx.accepted = true;
    ctx.current = scope;
    if (ctx.stream) {
      if (!ctx.chunks) throw new SluiceError('TRANSPORT', `transport ${this.transport.name} set no chunks for a stream`);
      ctx.chunks = ctx.attemptStream = new SettlingStream(
        this.guardTransport ? new AbortBoundStream(ctx.chunks, ctx.abortSource) : ctx.chunks,
        {
          wantsText: () => scope.hasListeners,
          usage: () => ctx.usage,
          abortReason: () => abortReason(ctx),
          now: () => this.clock.now(),
          done: (settlement) => scope.settle(settlement),
        },
        startedAt,
        scope,
      );
    } else {
      if (!ctx.response) throw new SluiceError('TRANSPORT', `transport ${this.transport.name} set no response`);
      const { usage, response } = ctx;
      const durationMs = Math.max(0, this.clock.now() - startedAt);
      scope.settle(() => ({
        outcome: 'success', error: undefined, usage, response, streamedText: '', chunks: 0, stream: false, durationMs,
        accepted: true,
      }));
    }
  }
}

/** What a call given no options has. */
const noOptions: CallOptions = Object.freeze({});

/** A finished non-stream call's completion. */
function responseOf(ctx: CompletionContext): ChatCompletion {
  if (!ctx.response) throw new UnexpectedError(new Error('the pipeline finished without a response'));
  return ctx.response;
}

const noop = (): void => {};

/** A transport that did not hear the abort answered after it: the stream it set, if any, is told to stop. */
function stopLate(ctx: CompletionContext): void {
  const chunks = ctx.chunks;
  if (!ctx.stream || chunks === undefined) return;
  try {
    letGo(chunks[Symbol.asyncIterator]());
  } catch {
    // A stream that cannot even give its iterator has nothing to release.
  }
}

/** The call's own timeout, or what is left of its parent's deadline if that is sooner. */
function timeoutOf(call: CallOptions): number | undefined {
  const inherited = call.parent?.remainingMs() ?? Infinity;
  if (inherited === Infinity) return call.timeoutMs;
  return Math.max(0, Math.min(call.timeoutMs ?? Infinity, inherited));
}

/** Whether `promise` settled within `ms` on `clock` (the timer is cleared either way). */
function settlesWithin(promise: Promise<unknown>, ms: number, clock: Clock): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(() => resolve(false), ms);
    const done = () => {
      clock.clearTimeout(timer);
      resolve(true);
    };
    promise.then(done, done);
  });
}

const noTags: Readonly<Record<string, string>> = Object.freeze({});


/**
 * Each `next()` starts a new response: listeners registered from then on,
 * until the transport answers, belong to the call as a whole, never to a
 * response an earlier attempt produced.
 */
function unbindOnNext(ctx: CompletionContext): void {
  (ctx as unknown as Call).current = undefined;
}

/**
 * Creates a pipeline ending in `transport`.
 *
 * @param options - the transport, and optionally a clock, store and emitter
 * @throws ValidationError naming the bad option
 * @example
 * ```ts
 * const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) }).use(retry());
 * const reply = await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] });
 * ```
 */
export function createPipeline(options: PipelineOptions): Pipeline {
  return new Pipeline(options);
}
