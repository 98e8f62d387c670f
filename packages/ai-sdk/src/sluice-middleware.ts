import type { CallOptions, ChatCompletion, ChatCompletionRequest, CompletionContext } from '@sluice/core';
import type { LanguageModelMiddleware } from 'ai';
import { fromCompletion, PartsOfChunks } from './from-completion.js';
import { toCallerError } from './from-model-error.js';
import { callTag, calls, type ModelCall } from './language-model-transport.js';
import type { GenerateResult, StreamPart, StreamResult } from './model-types.js';
import { type PartChunk, partOf } from './to-completion.js';
import { toChatRequest } from './to-chat-request.js';

/** The part of a pipeline the middleware calls (any `Pipeline<S>` is one). */
export interface RunsCompletions {
  run(request: ChatCompletionRequest, options?: CallOptions): Promise<CompletionContext>;
}

let sequence = 0;

/** Tags for the call: the caller's (`providerOptions.sluice.tags`) and the one naming it to the transport. */
function callOptions(token: string, providerOptions: unknown, signal: AbortSignal | undefined): CallOptions {
  const sluice = (providerOptions as { sluice?: { tags?: unknown } } | undefined)?.sluice;
  const tags: Record<string, string> = {};
  if (sluice?.tags && typeof sluice.tags === 'object') {
    for (const [name, value] of Object.entries(sluice.tags)) if (typeof value === 'string') tags[name] = value;
  }
  tags[callTag] = token;
  return signal ? { tags, signal } : { tags };
}

/**
 * An AI SDK middleware (`wrapLanguageModel`) that runs a sluice pipeline
 * around every `doGenerate` and `doStream` of the model it wraps, for
 * providers that do not speak the OpenAI API (Anthropic, Google, Bedrock):
 * retry, breaker, rate limits, budgets and cost apply, each attempt one
 * model call, with the model's real usage, so token limits and cost are exact.
 *
 * The pipeline must end in {@link languageModels}. It sees the call as the
 * chat-completions request it stands for (model id, messages, tools,
 * `max_tokens`) to count, price and key on; the model sends its own
 * request, so middleware that rewrite the request (trimming, a model
 * swap) do not reach it. Tags for keyed middleware come from
 * `providerOptions: { sluice: { tags } }`. A failure comes back as the
 * model's own `APICallError` (marked not retryable: sluice already
 * retried) or as sluice's error (an open circuit, a limit, a budget); set
 * `maxRetries: 0` on `generateText`/`streamText` all the same, so the AI
 * SDK never retries on top.
 *
 * @param pipeline - a pipeline ending in `languageModels()`
 * @example
 * ```ts
 * const llm = createPipeline({ transport: languageModels() }).use(trackCost()).use(retry()).use(breaker());
 * const model = wrapLanguageModel({ model: anthropic('claude-sonnet-4-5'), middleware: sluiceMiddleware(llm) });
 * const { text } = await generateText({ model, prompt: 'Hello', maxRetries: 0 });
 * ```
 */
export function sluiceMiddleware(pipeline: RunsCompletions): LanguageModelMiddleware {
  return {
    specificationVersion: 'v3',
    async wrapGenerate({ model, params }) {
      const token = `${Date.now().toString(36)}-${(sequence++).toString(36)}`;
      const call: ModelCall = { model, params };
      calls.set(token, call);
      try {
        const ctx = await pipeline.run(toChatRequest(model.modelId, params), callOptions(token, params.providerOptions, params.abortSignal));
        // No model call answered it (a cache hit, a middleware answering itself): the result its completion stands for.
        return (call.result as GenerateResult | undefined) ?? fromCompletion(ctx.response as ChatCompletion);
      } catch (error) {
        throw toCallerError(error);
      } finally {
        calls.delete(token);
      }
    },
    async wrapStream({ model, params }) {
      const token = `${Date.now().toString(36)}-${(sequence++).toString(36)}`;
      const call: ModelCall = { model, params };
      calls.set(token, call);
      let ctx: CompletionContext;
      try {
        ctx = await pipeline.run(
          { ...toChatRequest(model.modelId, params), stream: true },
          callOptions(token, params.providerOptions, params.abortSignal),
        );
      } catch (error) {
        throw toCallerError(error);
      } finally {
        calls.delete(token);
      }
      const iterator = (ctx.chunks as AsyncIterable<PartChunk>)[Symbol.asyncIterator]();
      // Parts made from chunks no model call produced (a cache's replay, a middleware's own), made when one comes.
      let made: PartsOfChunks | undefined;
      const pending: StreamPart[] = [];
      const stream = new ReadableStream<StreamPart>(
        {
          async pull(controller) {
            try {
              for (;;) {
                const queued = pending.shift();
                if (queued) return controller.enqueue(queued);
                const next = await iterator.next();
                if (next.done) {
                  if (made) {
                    pending.push(...made.end());
                    made = undefined;
                    continue;
                  }
                  return controller.close();
                }
                const part = next.value[partOf];
                if (part) return controller.enqueue(part);
                pending.push(...(made ??= new PartsOfChunks()).parts(next.value));
              }
            } catch (error) {
              controller.enqueue({ type: 'error', error: toCallerError(error) });
              controller.close();
            }
          },
          async cancel() {
            await iterator.return?.();
          },
        },
        { highWaterMark: 0 },
      );
      return { ...(call.stream as Omit<StreamResult, 'stream'>), stream };
    },
  };
}
