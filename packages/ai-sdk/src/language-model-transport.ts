import type { CompletionContext, Transport } from '@sluice/core';
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
    async send(ctx: CompletionContext): Promise<void> {
      const token = ctx.tags[callTag];
      const call = token === undefined ? undefined : calls.get(token);
      if (!call) throw new Error('languageModels(): this pipeline is called through sluiceMiddleware() only');
      const params = { ...call.params, abortSignal: ctx.signal };
      if (!ctx.stream) {
        let result: Awaited<ReturnType<WrappedModel['doGenerate']>>;
        try {
          result = await call.model.doGenerate(params);
        } catch (error) {
          throw fromModelError(error, ctx.clock.now());
        }
        call.result = result;
        ctx.responseHeaders = result.response?.headers;
        ctx.response = toCompletion(call.model.modelId, result, ctx.id);
        ctx.usage = toUsage(result.usage);
        return;
      }
      let result: StreamResult;
      try {
        result = await call.model.doStream(params);
      } catch (error) {
        throw fromModelError(error, ctx.clock.now());
      }
      const { stream, ...rest } = result;
      call.stream = rest;
      ctx.responseHeaders = rest.response?.headers;
      ctx.chunks = readParts(ctx, stream, call.model.modelId);
    },
  };
}

/** The model's parts as chunks; an error part ends the stream with its typed error. */
async function* readParts(ctx: CompletionContext, stream: StreamResult['stream'], modelId: string): AsyncGenerator<PartChunk> {
  const reader = stream.getReader();
  const toolIndex = new Map<string, number>();
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) {
        finished = true;
        return;
      }
      if (value.type === 'error') throw fromModelError(value.error, ctx.clock.now());
      const chunk = toChunk(value, modelId, ctx.id, toolIndex);
      if (chunk.usage) ctx.usage = chunk.usage;
      yield chunk;
    }
  } catch (error) {
    throw fromModelError(error, ctx.clock.now());
  } finally {
    // Stopped early (an error, the consumer's cancel): cancel the model's stream, which ends its request.
    if (!finished) await reader.cancel().catch(() => {});
  }
}
