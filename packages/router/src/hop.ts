import { type ChatCompletionChunk, type CompletionContext, toSluiceError } from '@sluice/core';
import type { DeploymentPool } from './deployment-pool.js';
import type { ResolvedDeployment } from './options.js';

/** A deployment's answer: its inner call, and for a stream the chunks from the first on. */
export interface Answer {
  deployment: ResolvedDeployment;
  inner: CompletionContext;
  /** For a stream: the first chunk already read, then the rest; gives the slot back when it ends. */
  chunks: AsyncIterable<ChatCompletionChunk> | undefined;
  /** Time from sending to the first chunk (stream) or the response. */
  firstChunkMs: number;
  /** Drops the answer unread (a hedge's loser that answered too late). */
  discard(): Promise<void>;
}

/**
 * Sends the call to one deployment through its inner pipeline and waits
 * for its answer: the response, or for a stream the first chunk. Reading
 * that chunk here means a stream that fails before its first chunk can
 * still go elsewhere, and it is what "first byte" means for hedging and
 * latency. Holds the deployment's slot the caller took (`release` gives
 * it back) until the answer is delivered in full, fails, or is discarded.
 *
 * @param pool - the deployments' pipelines and slots
 * @param deployment - where to send it
 * @param ctx - the outer call
 * @param release - gives back the slot taken when the deployment was picked
 * @param cancel - a hedge's own cancel, beside the outer call's abort (which the hop inherits, with its deadline)
 * @throws the inner pipeline's error (its breaker, limits, the upstream)
 */
export async function sendHop(
  pool: DeploymentPool,
  deployment: ResolvedDeployment,
  ctx: CompletionContext,
  release: () => void,
  cancel?: AbortSignal,
): Promise<Answer> {
  const pipeline = pool.pipelineFor(deployment, ctx);
  const startedAt = ctx.clock.now();
  try {
    // The inner call is made for the outer one: it is aborted with it and
    // keeps its deadline, without an AbortController or a timer of its own.
    const { request } = ctx;
    // The inner pipeline copies the request anyway; a copy here only to set the same model would be waste.
    const running = pipeline.run(
      request.model === deployment.model ? request : { ...request, model: deployment.model },
      { parent: ctx, tags: { ...ctx.tags, deployment: deployment.id }, ...(cancel ? { signal: cancel } : {}) },
    );
    const inner = await running;
    if (!ctx.stream) {
      release();
      return { deployment, inner, chunks: undefined, firstChunkMs: ctx.clock.now() - startedAt, discard: async () => {} };
    }
    const iterator = (inner.chunks as AsyncIterable<ChatCompletionChunk>)[Symbol.asyncIterator]();
    let first: IteratorResult<ChatCompletionChunk>;
    try {
      first = await iterator.next();
    } catch (caught) {
      await iterator.return?.().catch(() => {});
      throw caught;
    }
    const chunks = new HopStream(first, iterator, inner, ctx, release);
    return {
      deployment,
      inner,
      chunks,
      firstChunkMs: ctx.clock.now() - startedAt,
      discard: () => chunks.return().then(() => {}, () => {}),
    };
  } catch (caught) {
    release();
    throw toSluiceError(caught);
  }
}

/**
 * The first chunk, then the rest of the inner stream, copying the inner
 * call's usage to the outer call as it arrives. A plain iterator, not an
 * async generator: a generator that has not started ignores `return()`,
 * and a caller that stops early must always cancel the upstream request.
 */
class HopStream implements AsyncIterableIterator<ChatCompletionChunk> {
  private delivered = false;
  private finished: boolean;

  constructor(
    private readonly first: IteratorResult<ChatCompletionChunk>,
    private readonly rest: AsyncIterator<ChatCompletionChunk>,
    private readonly inner: CompletionContext,
    private readonly outer: CompletionContext,
    private readonly release: () => void,
  ) {
    this.finished = first.done === true;
    if (this.finished) release();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    if (this.finished) return this.end();
    if (!this.delivered) {
      this.delivered = true;
      return this.first as IteratorResult<ChatCompletionChunk, undefined>;
    }
    try {
      const result = await this.rest.next();
      if (this.inner.usage) this.outer.usage = this.inner.usage;
      if (!result.done) return result;
    } catch (error) {
      this.end();
      throw error;
    }
    return this.end();
  }

  async return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    if (this.finished) return this.end();
    try {
      await this.rest.return?.();
    } finally {
      this.end();
    }
    return { done: true, value: undefined };
  }

  private end(): IteratorResult<ChatCompletionChunk, undefined> {
    this.finished = true;
    this.release();
    return { done: true, value: undefined };
  }
}
