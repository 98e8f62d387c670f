import { type CompletionContext, MalformedResponseError, type Transport } from '@sluice/core';
import { abortReason, type EndAware, onAbort, type ReadingAware, streamEnd, streamReading, toSluiceError, untilAborted } from '@sluice/core/kit';
import { fromModelError } from './from-model-error.js';
import type { CallParams, StreamResult, WrappedModel } from './model-types.js';
import { type PartChunk, toChunk, toCompletion, toUsage } from './to-completion.js';

/** The tag that names a model call to the transport; internal. */
export const callTag = 'ai-sdk.call';

/** A model call waiting for the pipeline to reach its transport. */
export interface ModelCall {
  model: WrappedModel;
  params: CallParams;
  /** The model's own result of the attempt that answered, for the caller. */
  result?: unknown;
  /** The stream result's request and response fields, for the caller. */
  stream?: Omit<StreamResult, 'stream'>;
}

/*
 * Calls in flight, by their tag. Shared through a global symbol, so two
 * installed copies of this package still find each other's calls.
 */
const registryKey = Symbol.for('sluice.ai-sdk.calls');
const global = globalThis as { [registryKey]?: Map<string, ModelCall> };
export const calls: Map<string, ModelCall> = (global[registryKey] ??= new Map());

/**
 * The transport of a pipeline that runs around AI SDK models: each attempt
 * the pipeline makes calls the wrapped model's `doGenerate` or `doStream`
 * once, with the call's signal (the caller's abort, the deadline, `close()`),
 * and reads its answer back as a completion or chunks with the model's
 * real usage. Use it with {@link sluiceMiddleware}.
 *
 * @example
 * ```ts
 * const llm = createPipeline({ transport: languageModels() }).use(retry()).use(breaker());
 * const model = wrapLanguageModel({ model: anthropic('claude-sonnet-4-5'), middleware: sluiceMiddleware(llm) });
 * ```
 */
export function languageModels(): Transport {
  return {
    name: 'ai-sdk',
    origin: 'ai-sdk',
    // Every wait on the model is raced with the call's abort (untilAborted), its stream's reads too.
    honoursAbort: true,
    async send(ctx: CompletionContext): Promise<void> {
      const token = ctx.tags[callTag];
      const call = token === undefined ? undefined : calls.get(token);
      if (!call) throw new Error('languageModels(): this pipeline is called through sluiceMiddleware() only');
      const params = { ...call.params, abortSignal: ctx.signal };
      if (!ctx.stream) {
        let result: Awaited<ReturnType<WrappedModel['doGenerate']>>;
        try {
          // A model that does not hear abortSignal (a provider's fetch whose body read never
          // settles, as Node 20's did on a body it could not decode) must not hold the call.
          result = await untilAborted(ctx, call.model.doGenerate(params));
        } catch (error) {
          throw abortReason(ctx) === undefined ? fromModelError(error, ctx.clock.now(), 'threw') : toSluiceError(abortReason(ctx));
        }
        if (!Array.isArray((result as Partial<typeof result> | undefined)?.content)) {
          throw new MalformedResponseError(`the model's doGenerate returned ${described(result, 'content')}, not a result with a content array`);
        }
        call.result = result;
        ctx.responseHeaders = result.response?.headers;
        ctx.response = toCompletion(call.model.modelId, result, ctx.id);
        ctx.usage = toUsage(result.usage);
        return;
      }
      let result: StreamResult;
      try {
        result = await untilAborted(ctx, call.model.doStream(params));
      } catch (error) {
        throw abortReason(ctx) === undefined ? fromModelError(error, ctx.clock.now(), 'threw') : toSluiceError(abortReason(ctx));
      }
      if (typeof (result as Partial<typeof result> | undefined)?.stream?.getReader !== 'function') {
        throw new MalformedResponseError(`the model's doStream returned ${described(result, 'stream')}, not a result with a ReadableStream`);
      }
      const { stream, ...rest } = result;
      call.stream = rest;
      ctx.responseHeaders = rest.response?.headers;
      ctx.chunks = partStream(ctx, stream, call.model.modelId);
    },
  };
}

/**
 * The model's parts as chunks ({@link readParts}), as a stream that says
 * when it ends (so a pipeline that hands it over unwatched keeps the call
 * in flight until then, and `close()` gives it its grace and then aborts
 * it) and that orders early reads itself (an async generator queues a
 * `next()` asked before the last landed, so `stream()` passes each straight
 * through). See core's `streamEnd` and `streamReading`.
 */
function partStream(ctx: CompletionContext, stream: StreamResult['stream'], modelId: string): AsyncGenerator<PartChunk> & EndAware & ReadingAware {
  let told: (() => void) | undefined;
  let over = false;
  let unwatch: (() => void) | undefined;
  const end = () => {
    over = true;
    unwatch?.();
    unwatch = undefined;
    const callback = told;
    told = undefined;
    callback?.();
  };
  const parts = readParts(ctx, stream, modelId, end);
  const unstarted = () => {
    if (!stream.locked) void stream.cancel().catch(ignore);
  };
  const returnParts = parts.return.bind(parts);
  const throwParts = parts.throw.bind(parts);
  return Object.assign(parts, {
    [streamReading]: false as const,
    [streamEnd](callback: () => void): boolean {
      if (over || told !== undefined || abortReason(ctx) !== undefined) return false;
      told = callback;
      // Aborted, it yields nothing more, whether or not anyone reads it again (nor ever started to).
      unwatch = onAbort(ctx, end);
      return true;
    },
    // A generator stopped before its first read never runs its body (whose first step takes the
    // model's stream): the model's stream is cancelled, and the end told, here instead.
    return(value?: unknown): Promise<IteratorResult<PartChunk, void>> {
      unstarted();
      return returnParts(value as undefined).finally(end);
    },
    throw(error?: unknown): Promise<IteratorResult<PartChunk, void>> {
      unstarted();
      return throwParts(error).finally(end);
    },
  });
}

/**
 * The model's parts as chunks; an error part ends the stream with its typed
 * error. The call's abort cancels the model's stream itself, which settles
 * a read in progress, and the stream then fails with the call's reason: a
 * model whose stream does not hear `abortSignal` cannot hold the call.
 * `ended` runs once the generator is done, however it ends.
 */
async function* readParts(ctx: CompletionContext, stream: StreamResult['stream'], modelId: string, ended: () => void): AsyncGenerator<PartChunk> {
  const reader = stream.getReader();
  const toolIndex = new Map<string, number>();
  let finished = false;
  const unwatch = onAbort(ctx, () => void reader.cancel(abortReason(ctx)).catch(ignore));
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const aborted = abortReason(ctx);
      if (aborted !== undefined) throw toSluiceError(aborted);
      if (done) {
        finished = true;
        return;
      }
      if (typeof value !== 'object' || value === null) throw new MalformedResponseError(`the model's stream sent ${value === null ? 'null' : typeof value}, not a stream part`);
      if (value.type === 'error') throw fromModelError(value.error, ctx.clock.now(), 'stream');
      const chunk = toChunk(value, modelId, ctx.id, toolIndex);
      if (chunk.usage) ctx.usage = chunk.usage;
      yield chunk;
    }
  } catch (error) {
    const aborted = abortReason(ctx);
    throw aborted === undefined ? fromModelError(error, ctx.clock.now(), 'stream') : toSluiceError(aborted);
  } finally {
    unwatch();
    // Stopped early (an error, the consumer's cancel): cancel the model's stream, which ends its request.
    if (!finished) await reader.cancel().catch(ignore);
    ended();
  }
}

const ignore = () => {};

/** What a model returned instead of a result, for an error message: `undefined`, `an object without stream`. */
function described(value: unknown, field: string): string {
  if (value === null || typeof value !== 'object') return value === null ? 'null' : typeof value;
  return `an object whose ${field} is ${describeValue((value as Record<string, unknown>)[field])}`;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
