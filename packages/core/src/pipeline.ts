import { z } from 'zod';
import { type Clock, systemClock } from './clock.js';
import { compose } from './compose.js';
import { abortReason, Call, type CallEnvironment } from './call.js';
import type { CompletionContext, Middleware, Settlement, TransportInfo } from './context.js';
import { AbortError, SluiceError, TimeoutError, UnexpectedError, ValidationError, toSluiceError } from './errors.js';
import { type SluiceEmitter, createEmitter } from './events.js';
import { type ChatCompletion, type ChatCompletionChunk, type ChatCompletionRequest, chatCompletionRequestSchema } from './schemas.js';
import { SettleScope, SettlingStream } from './settlement.js';
import { type Store, memoryStore } from './store.js';
import { parseOptions } from './validate.js';
import { type BatchOptions, type BatchResult, runBatch } from './batch.js';

/**
 * The innermost step: sends `ctx.request` upstream and sets `ctx.response`
 * (non-stream) or `ctx.chunks` (stream, resolving once the upstream
 * accepted the request), and `ctx.usage` when known.
 */
export interface Transport extends TransportInfo {
  send(ctx: CompletionContext): Promise<void>;
  /** Releases connections; the pipeline's `close()` calls it. */
  close?(): Promise<void>;
}

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

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
  /** One deadline for the whole call: every attempt, wait and middleware. */
  timeoutMs?: number;
  /** Labels (user, tenant, feature) that keyed middleware and reports use. */
  tags?: Record<string, string>;
}

const pipelineOptionsSchema = z.object({
  transport: z.custom<Transport>(
    (value) => typeof (value as Transport | undefined)?.send === 'function',
    'must be a transport with a send(ctx) method',
  ),
  clock: z.custom<Clock>((value) => typeof (value as Clock | undefined)?.now === 'function', 'must be a Clock').optional(),
  store: z.custom<Store>((value) => typeof (value as Store | undefined)?.update === 'function', 'must be a Store').optional(),
  events: z.custom<SluiceEmitter>((value) => typeof (value as SluiceEmitter | undefined)?.emit === 'function').optional(),
  validateRequests: z.boolean().optional(),
});

const callOptionsSchema = z.object({
  signal: z.custom<AbortSignal>((value) => value instanceof AbortSignal, 'must be an AbortSignal').optional(),
  timeoutMs: z.number().positive().finite().optional(),
  tags: z.record(z.string(), z.string()).optional(),
});

/**
 * A composed pipeline: add middleware with `use`, then call it.
 */
export class Pipeline<S extends object = object> {
  readonly events: SluiceEmitter;
  readonly clock: Clock;
  readonly store: Store;
  private readonly transport: Transport;
  private readonly environment: CallEnvironment;
  private readonly validateRequests: boolean;
  private readonly middleware: Middleware<S>[] = [];
  private composed: Middleware<S> | undefined;

  constructor(options: PipelineOptions) {
    const parsed = parseOptions(pipelineOptionsSchema, options, 'createPipeline');
    this.transport = parsed.transport;
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
    if (typeof middleware !== 'function') throw new ValidationError('middleware', 'must be a function');
    this.middleware.push(middleware as unknown as Middleware<S>);
    this.composed = undefined;
    return this as unknown as Pipeline<S & T>;
  }

  /**
   * Sends a non-streaming request and resolves to the completion.
   *
   * @throws ValidationError for a malformed request; the typed upstream error otherwise
   */
  async complete(request: ChatCompletionRequest, options?: CallOptions): Promise<ChatCompletion> {
    if (request?.stream === true) throw new ValidationError('stream', 'use stream() for a streaming request');
    const ctx = await this.run(request, options);
    if (!ctx.response) throw new UnexpectedError(new Error('the pipeline finished without a response'));
    return ctx.response;
  }

  /**
   * Streams a request's chunks. Nothing is sent until iteration starts;
   * `break` or an abort cancels the upstream request.
   */
  stream(request: ChatCompletionRequest, options?: CallOptions): AsyncIterable<ChatCompletionChunk> {
    return { [Symbol.asyncIterator]: () => new LazyStream(() => this.run({ ...request, stream: true }, options)) };
  }

  /**
   * Runs a request through the pipeline and returns the finished context
   * (for a stream, with `chunks` still to be read).
   */
  async run(request: ChatCompletionRequest, options?: CallOptions): Promise<CompletionContext<S>> {
    const call = options === undefined ? {} : parseOptions(callOptionsSchema, options, 'options');
    const body = this.parseRequest(request);
    const ctx = new Call<S>(body, call.tags ? Object.freeze({ ...call.tags }) : noTags, call.timeoutMs, this.environment);
    if (this.events.listenerCount('request') > 0) {
      this.events.emit('request', { id: ctx.id, model: body.model, stream: ctx.stream, tags: ctx.tags });
    }
    const release = this.armDeadline(ctx, call);
    try {
      this.composed ??= compose(this.middleware.map(unbindOnNext));
      await this.composed(ctx, () => this.send(ctx));
    } catch (caught) {
      const error = toSluiceError(caught);
      release();
      await this.finish(ctx, { outcome: 'error', error, response: undefined, streamedText: '', chunks: 0 });
      throw error;
    }
    if (ctx.stream) {
      if (!ctx.chunks) throw new UnexpectedError(new Error('the pipeline finished a stream call without chunks'));
      // Nobody is left to hear about the response (no middleware wrapped it
      // or registered for it): hand the caller the transport's own stream,
      // as fast as the transport alone.
      if (ctx.chunks instanceof SettlingStream && ctx.chunks.unobserved()) ctx.chunks = ctx.chunks.source;
      if (release === noop && !ctx.scope.hasListeners && !ctx.pending && this.events.listenerCount('response') === 0) {
        return ctx;
      }
      ctx.chunks = new SettlingStream(
        ctx.chunks,
        {
          wantsText: () => ctx.scope.hasListeners,
          usage: () => ctx.usage,
          abortReason: () => abortReason(ctx),
          now: () => this.clock.now(),
          done: (settlement) => {
            release();
            return this.finish(ctx, settlement);
          },
        },
        ctx.startedAt,
      );
      return ctx;
    }
    release();
    const finishing = this.finish(ctx, { outcome: 'success', error: undefined, response: ctx.response, streamedText: '', chunks: 0 });
    if (finishing) await finishing;
    return ctx;
  }

  /**
   * Runs many requests with at most `concurrency` in flight. Resolves to
   * one result per request, in input order; one failure never rejects
   * the batch.
   */
  batch(requests: readonly ChatCompletionRequest[], options: BatchOptions = {}): Promise<BatchResult[]> {
    return runBatch(this as unknown as Pipeline, requests, options);
  }

  /** Closes the transport's connections. */
  async close(): Promise<void> {
    await this.transport.close?.();
  }

  private parseRequest(request: ChatCompletionRequest): ChatCompletionRequest {
    // zod builds new objects and arrays, so middleware rewriting the
    // request can never reach the caller's own object.
    if (this.validateRequests) return parseOptions(chatCompletionRequestSchema, request, 'request');
    return { ...request, messages: [...request.messages] };
  }

  /** Emits `response` and settles the call; returns a promise only when there is something to wait for. */
  private finish(
    ctx: Call<S>,
    settlement: Omit<Settlement, 'durationMs' | 'stream' | 'usage'>,
  ): Promise<void> | undefined {
    const durationMs = this.clock.now() - ctx.startedAt;
    if (this.events.listenerCount('response') > 0) {
      this.events.emit('response', {
        id: ctx.id,
        model: ctx.request.model,
        stream: ctx.stream,
        outcome: settlement.outcome,
        durationMs,
        usage: ctx.usage,
        errorCode: settlement.error?.code,
      });
    }
    const { usage, stream } = ctx;
    const settling = ctx.scope.settle(() => ({ ...settlement, usage, stream, durationMs }));
    const draining = ctx.pending ? ctx.drain() : undefined;
    if (!settling && !draining) return undefined;
    return Promise.all([settling, draining]).then(() => ctx.drain());
  }

  /** Links the caller's signal and the deadline to the call's abort; returns the cleanup. */
  private armDeadline(ctx: Call<S>, call: CallOptions): () => void {
    const { signal, timeoutMs } = call;
    if (!signal && timeoutMs === undefined) return noop;
    const source = ctx.abortSource;
    const onAbort = () => source.abort(new AbortError('The call was aborted', { cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      timeoutMs === undefined
        ? undefined
        : this.clock.setTimeout(() => source.abort(new TimeoutError('deadline', timeoutMs)), timeoutMs);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      signal?.removeEventListener('abort', onAbort);
      if (timer !== undefined) this.clock.clearTimeout(timer);
    };
  }

  /** The innermost step: the transport, with its response's settlement. */
  private async send(ctx: Call<S>): Promise<void> {
    ctx.current = undefined;
    ctx.response = undefined;
    ctx.chunks = undefined;
    ctx.usage = undefined;
    ctx.responseHeaders = undefined;
    const aborted = abortReason(ctx);
    if (aborted !== undefined) throw toSluiceError(aborted);
    const startedAt = this.clock.now();
    const scope = new SettleScope(ctx.runListener);
    const base = ctx as unknown as CompletionContext;
    try {
      await this.transport.send(base);
    } catch (caught) {
      const error = toSluiceError(caught);
      // A middleware catching this error and registering a listener then
      // hears about this failed attempt.
      ctx.current = scope;
      scope.settle({
        outcome: 'error', error, usage: undefined, response: undefined, streamedText: '', chunks: 0,
        stream: ctx.stream, durationMs: this.clock.now() - startedAt,
      });
      throw error;
    }
    ctx.current = scope;
    if (ctx.stream) {
      if (!ctx.chunks) throw new SluiceError('TRANSPORT', `transport ${this.transport.name} set no chunks for a stream`);
      ctx.chunks = new SettlingStream(
        ctx.chunks,
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
      const durationMs = this.clock.now() - startedAt;
      scope.settle(() => ({
        outcome: 'success', error: undefined, usage, response, streamedText: '', chunks: 0, stream: false, durationMs,
      }));
    }
  }
}

const noop = () => {};
const noTags: Readonly<Record<string, string>> = Object.freeze({});

/**
 * The iterator `stream()` returns: runs the call on the first `next()`,
 * then passes straight through to the call's chunks.
 */
class LazyStream implements AsyncIterableIterator<ChatCompletionChunk> {
  private inner: AsyncIterator<ChatCompletionChunk> | undefined;
  private closed = false;

  constructor(private readonly start: () => Promise<CompletionContext>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    if (this.closed) return { done: true, value: undefined };
    if (!this.inner) {
      const ctx = await this.start();
      this.inner = (ctx.chunks ?? emptyChunks)[Symbol.asyncIterator]();
    }
    return this.inner.next() as Promise<IteratorResult<ChatCompletionChunk, undefined>>;
  }

  async return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    this.closed = true;
    await this.inner?.return?.();
    return { done: true, value: undefined };
  }
}

const emptyChunks: AsyncIterable<ChatCompletionChunk> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };

/**
 * Each `next()` starts a new response: listeners registered from then on,
 * until the transport answers, belong to the call as a whole, never to a
 * response an earlier attempt produced.
 */
function unbindOnNext<S extends object>(middleware: Middleware<S>): Middleware<S> {
  const named = {
    [middleware.name]: (ctx: CompletionContext<S>, next: () => Promise<void>) =>
      middleware(ctx, () => {
        (ctx as unknown as Call).current = undefined;
        return next();
      }),
  };
  return named[middleware.name] as Middleware<S>;
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
