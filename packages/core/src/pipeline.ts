import { z } from 'zod';
import { type Clock, systemClock } from './clock.js';
import { compose } from './compose.js';
import type { CompletionContext, Middleware, SettleListener, Settlement, TransportInfo } from './context.js';
import type { SluiceState } from './index.js';
import { AbortError, SluiceError, TimeoutError, UnexpectedError, ValidationError, toSluiceError } from './errors.js';
import { type SluiceEmitter, createEmitter } from './events.js';
import { type ChatCompletion, type ChatCompletionChunk, type ChatCompletionRequest, chatCompletionRequestSchema } from './schemas.js';
import { SettleScope, settleWhenDone } from './settlement.js';
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

const kCall = Symbol('sluice.call');
const kAbort = Symbol('sluice.abort');

interface CallInternals {
  /** The response the transport produced last, while it is the current one. */
  current: SettleScope | undefined;
}

let sequence = 0;
const newId = () => `call_${Date.now().toString(36)}${(++sequence).toString(36)}`;

/**
 * A composed pipeline: add middleware with `use`, then call it.
 */
export class Pipeline<S extends object = object> {
  readonly events: SluiceEmitter;
  readonly clock: Clock;
  readonly store: Store;
  private readonly transport: Transport;
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
    const pipeline = this;
    return {
      async *[Symbol.asyncIterator]() {
        const ctx = await pipeline.run({ ...request, stream: true }, options);
        if (ctx.chunks) yield* ctx.chunks;
      },
    };
  }

  /**
   * Runs a request through the pipeline and returns the finished context
   * (for a stream, with `chunks` still to be read).
   */
  async run(request: ChatCompletionRequest, options: CallOptions = {}): Promise<CompletionContext<S>> {
    const call = parseOptions(callOptionsSchema, options, 'options');
    const body = this.parseRequest(request);
    const ctx = this.createContext(body, call);
    const internals = (ctx as unknown as { [kCall]: CallInternals })[kCall];
    const pending: Promise<void>[] = [];
    const runListener = async (listener: SettleListener, settlement: Settlement) => {
      try {
        await listener(settlement);
      } catch (error) {
        this.events.emit('listener-error', { id: ctx.id, error });
      }
    };
    const callScope = new SettleScope(runListener);
    (ctx as { onSettled: CompletionContext['onSettled'] }).onSettled = (listener) => {
      const running = (internals.current ?? callScope).add(listener);
      if (running) pending.push(running);
    };
    this.events.emit('request', { id: ctx.id, model: body.model, stream: ctx.stream, tags: ctx.tags });
    const finish = (settlement: Omit<Settlement, 'durationMs' | 'stream' | 'usage'>) => {
      const durationMs = this.clock.now() - ctx.startedAt;
      this.events.emit('response', {
        id: ctx.id,
        model: body.model,
        stream: ctx.stream,
        outcome: settlement.outcome,
        durationMs,
        usage: ctx.usage,
        errorCode: settlement.error?.code,
      });
      return callScope.settle({ ...settlement, usage: ctx.usage, stream: ctx.stream, durationMs });
    };
    const release = this.armDeadline(ctx, call);

    try {
      this.composed ??= compose(this.middleware.map(unbindOnNext));
      await this.composed(ctx, () => this.send(ctx, internals, runListener));
    } catch (caught) {
      const error = toSluiceError(caught);
      release();
      await finish({ outcome: 'error', error, response: undefined, streamedText: '', chunks: 0 });
      await Promise.all(pending);
      throw error;
    }

    if (ctx.stream) {
      if (!ctx.chunks) throw new UnexpectedError(new Error('the pipeline finished a stream call without chunks'));
      ctx.chunks = settleWhenDone(ctx.chunks, ctx as unknown as CompletionContext, ctx.startedAt, async (settlement) => {
        release();
        await finish(settlement);
        await Promise.all(pending);
      });
      return ctx;
    }
    release();
    await finish({ outcome: 'success', error: undefined, response: ctx.response, streamedText: '', chunks: 0 });
    await Promise.all(pending);
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
    if (!this.validateRequests) return structuredClone(request);
    // zod builds new objects and arrays, so middleware rewriting the
    // request can never reach the caller's own object.
    return parseOptions(chatCompletionRequestSchema, request, 'request');
  }

  private createContext(request: ChatCompletionRequest, call: CallOptions): CompletionContext<S> {
    const controller = new AbortController();
    const startedAt = this.clock.now();
    const ctx = {
      id: newId(),
      request,
      stream: request.stream === true,
      response: undefined,
      chunks: undefined,
      usage: undefined,
      responseHeaders: undefined,
      signal: controller.signal,
      deadline: call.timeoutMs === undefined ? undefined : startedAt + call.timeoutMs,
      tags: Object.freeze({ ...call.tags }),
      state: {} as SluiceState & S,
      events: this.events,
      clock: this.clock,
      store: this.store,
      transport: { name: this.transport.name, origin: this.transport.origin },
      startedAt,
      onSettled: () => {},
      remainingMs(this: CompletionContext) {
        return this.deadline === undefined ? Infinity : this.deadline - this.clock.now();
      },
    } satisfies Omit<CompletionContext<S>, never>;
    Object.defineProperty(ctx, kCall, { value: { current: undefined } satisfies CallInternals });
    Object.defineProperty(ctx, kAbort, { value: controller });
    return ctx;
  }

  /** Links the caller's signal and the deadline to `ctx.signal`; returns the cleanup. */
  private armDeadline(ctx: CompletionContext<S>, call: CallOptions): () => void {
    const controller = (ctx as unknown as { [kAbort]: AbortController })[kAbort];
    const { signal } = call;
    const onAbort = () => controller.abort(new AbortError('The call was aborted', { cause: signal?.reason }));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    const timer =
      call.timeoutMs === undefined
        ? undefined
        : this.clock.setTimeout(() => controller.abort(new TimeoutError('deadline', call.timeoutMs ?? 0)), call.timeoutMs);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      signal?.removeEventListener('abort', onAbort);
      if (timer !== undefined) this.clock.clearTimeout(timer);
    };
  }

  /** The innermost step: the transport, with its response's settlement. */
  private async send(
    ctx: CompletionContext<S>,
    internals: CallInternals,
    runListener: (listener: SettleListener, settlement: Settlement) => Promise<void>,
  ): Promise<void> {
    internals.current = undefined;
    ctx.response = undefined;
    ctx.chunks = undefined;
    ctx.usage = undefined;
    ctx.responseHeaders = undefined;
    if (ctx.signal.aborted) throw toSluiceError(ctx.signal.reason);
    const startedAt = this.clock.now();
    const scope = new SettleScope(runListener);
    const base = ctx as unknown as CompletionContext;
    try {
      await this.transport.send(base);
    } catch (caught) {
      const error = toSluiceError(caught);
      // A middleware catching this error and registering a listener then
      // hears about this failed attempt.
      internals.current = scope;
      void scope.settle({
        outcome: 'error', error, usage: undefined, response: undefined, streamedText: '', chunks: 0,
        stream: ctx.stream, durationMs: this.clock.now() - startedAt,
      });
      throw error;
    }
    internals.current = scope;
    if (ctx.stream) {
      if (!ctx.chunks) throw new SluiceError('TRANSPORT', `transport ${this.transport.name} set no chunks for a stream`);
      ctx.chunks = settleWhenDone(ctx.chunks, base, startedAt, (settlement) => scope.settle(settlement));
    } else {
      if (!ctx.response) throw new SluiceError('TRANSPORT', `transport ${this.transport.name} set no response`);
      void scope.settle({
        outcome: 'success', error: undefined, usage: ctx.usage, response: ctx.response, streamedText: '', chunks: 0,
        stream: false, durationMs: this.clock.now() - startedAt,
      });
    }
  }
}

/**
 * Each `next()` starts a new response: listeners registered from then on,
 * until the transport answers, belong to the call as a whole, never to a
 * response an earlier attempt produced.
 */
function unbindOnNext<S extends object>(middleware: Middleware<S>): Middleware<S> {
  const named = {
    [middleware.name]: (ctx: CompletionContext<S>, next: () => Promise<void>) =>
      middleware(ctx, () => {
        (ctx as unknown as { [kCall]: CallInternals })[kCall].current = undefined;
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
