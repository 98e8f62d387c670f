import type { CallOptions } from './call-options.js';
import type { SluiceEmitter } from './events.js';
import type { ChatCompletion, ChatCompletionRequest } from './schemas.js';
import { AbortError, type SluiceError, toSluiceError, ValidationError } from './errors.js';

/** Options of `pipeline.batch()`. */
export interface BatchOptions extends CallOptions {
  /** Requests in flight at once (default 10). */
  concurrency?: number;
}

/** One request's outcome in a batch, next to its index. */
export type BatchResult =
  | { ok: true; index: number; value: ChatCompletion }
  | { ok: false; index: number; error: SluiceError };

/**
 * Runs requests with at most `concurrency` in flight and keeps every
 * failure next to its request: the batch itself only rejects for bad
 * options. Requests not yet started when `signal` aborts fail with
 * `ABORTED` without being sent. `timeoutMs` and `tags` apply to each call.
 */
export async function runBatch(
  pipeline: {
    complete(request: ChatCompletionRequest, options?: CallOptions): Promise<ChatCompletion>;
    readonly events: SluiceEmitter;
  },
  requests: readonly ChatCompletionRequest[],
  options: BatchOptions,
): Promise<BatchResult[]> {
  const { concurrency = 10, ...call } = options;
  if (!Array.isArray(requests)) throw new ValidationError('requests', 'must be an array');
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new ValidationError('options.concurrency', 'must be a positive integer');
  }
  const results = new Array<BatchResult>(requests.length);
  let cursor = 0;
  let done = 0;
  let failed = 0;
  const worker = async () => {
    while (cursor < requests.length) {
      const index = cursor++;
      try {
        if (call.signal?.aborted) throw new AbortError('The batch was aborted', { cause: call.signal.reason });
        const value = await pipeline.complete(requests[index] as ChatCompletionRequest, call);
        results[index] = { ok: true, index, value };
      } catch (error) {
        failed++;
        results[index] = { ok: false, index, error: toSluiceError(error) };
      }
      done++;
      pipeline.events.emit('batch-progress', { done, failed, total: requests.length });
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, requests.length) }, worker));
  return results;
}
