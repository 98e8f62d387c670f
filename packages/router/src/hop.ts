import { type ChatCompletionChunk, type CompletionContext, toSluiceError } from '@sluice/core';
import { type EndAware, outliveParent, type ReadingAware, streamEnd, streamReading } from '@sluice/core/kit';
import type { DeploymentPool, Picked } from './deployment-pool.js';
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

/** What a non-stream answer, or one already read, does when dropped: nothing. */
const discardNothing = (): Promise<void> => Promise.resolve();

/**
 * Sends the call to one deployment through its inner pipeline and waits
 * for its answer: the response, or for a stream the first chunk. Reading
 * that chunk here means a stream that fails before its first chunk can
 * still go elsewhere, and it is what "first byte" means for hedging and
 * latency. Holds the deployment's slot the caller took (`picked.release()`
 * gives it back) until the answer is delivered in full, fails, or is discarded.
 *
 * @param pool - the deployments' pipelines and slots
 * @param picked - where to send it, with the slot taken on it
 * @param ctx - the outer call
 * @param cancel - a hedge's own cancel, beside the outer call's abort (which the hop inherits, with its deadline)
 * @throws the inner pipeline's error (its breaker, limits, the upstream)
 */
export function sendHop(pool: DeploymentPool, picked: Picked, ctx: CompletionContext, cancel?: AbortSignal): Promise<Answer> {
  const { deployment } = picked;
  const startedAt = ctx.clock.now();
  const running = startHop(pool, picked, ctx, cancel);
  // Not async: a JSON hop is one `then` on the inner call, where an async
  // frame cost every hop several times as many bytes.
  if (!ctx.stream) {
    return running.then(
      (inner) => {
        picked.release();
        return { deployment, inner, chunks: undefined, firstChunkMs: ctx.clock.now() - startedAt, discard: discardNothing };
      },
      (caught: unknown) => {
        picked.release();
        throw toSluiceError(caught);
      },
    );
  }
  return firstChunk(running, picked, ctx, startedAt);
}

/**
 * Starts the call on the deployment's inner pipeline: the inner call's
 * finished context (a stream's chunks still to read). Gives the slot back
 * if the call cannot even start; otherwise that is the caller's to do.
 *
 * @param pool - the deployments' pipelines and slots
 * @param picked - where to send it, with the slot taken on it
 * @param ctx - the outer call
 * @param cancel - a hedge's own cancel, beside the outer call's abort
 */
export function startHop(pool: DeploymentPool, picked: Picked, ctx: CompletionContext, cancel?: AbortSignal): Promise<CompletionContext> {
  const { deployment } = picked;
  try {
    const pipeline = pool.pipelineFor(deployment, ctx);
    // The inner call is made for the outer one: it is aborted with it and
    // keeps its deadline, without an AbortController or a timer of its own.
    const { request } = ctx;
    const tags = pool.hopTags(deployment, ctx);
    // The inner pipeline copies the request anyway; a copy here only to set the same model would be waste.
    return pipeline.run(
      request.model === deployment.model ? request : { ...request, model: deployment.model },
      cancel ? { parent: ctx, tags, signal: cancel } : { parent: ctx, tags },
    );
  } catch (caught) {
    picked.release();
    return Promise.reject(toSluiceError(caught));
  }
}

/** A streamed hop's answer once its first chunk is in (or it ended without one). */
async function firstChunk(running: Promise<CompletionContext>, picked: Picked, ctx: CompletionContext, startedAt: number): Promise<Answer> {
  try {
    const inner = await running;
    const iterator = (inner.chunks as AsyncIterable<ChatCompletionChunk>)[Symbol.asyncIterator]();
    let first: IteratorResult<ChatCompletionChunk>;
    try {
      first = await iterator.next();
    } catch (caught) {
      await iterator.return?.().catch(() => {});
      throw caught;
    }
    const chunks = new HopStream(first, iterator, inner, ctx, picked);
    return { deployment: picked.deployment, inner, chunks, firstChunkMs: ctx.clock.now() - startedAt, discard: () => chunks.discard() };
  } catch (caught) {
    picked.release();
    throw toSluiceError(caught);
  }
}

type Result = IteratorResult<ChatCompletionChunk, undefined>;

/**
 * The first chunk, then the rest of the inner stream, copying the inner
 * call's usage to the outer call as it arrives. A plain iterator, not an
 * async generator: a generator that has not started ignores `return()`,
 * and a caller that stops early must always cancel the upstream request.
 * And no async function per chunk: a chunk is one `then` on the inner
 * stream's promise, with handlers made once per stream.
 */
class HopStream implements AsyncIterableIterator<ChatCompletionChunk>, EndAware, ReadingAware {
  private delivered = false;
  private finished: boolean;
  /** Told once when the stream ends: the outer pipeline keeps the call in flight until then, for its `close()`. */
  private onEnded: (() => void) | undefined = undefined;
  // Bound once per stream, not made per chunk (and not as arrow fields, which a keep-names build names one by one).
  private readonly onResult = this.result.bind(this);
  private readonly onError = this.error.bind(this);

  constructor(
    private readonly first: IteratorResult<ChatCompletionChunk>,
    private readonly rest: AsyncIterator<ChatCompletionChunk>,
    private readonly inner: CompletionContext,
    private readonly outer: CompletionContext,
    private readonly picked: Picked,
  ) {
    this.finished = first.done === true;
    if (this.finished) picked.release();
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  /**
   * Whether a read is under way, as the deployment's stream says (core's
   * own do): each `next()` past the first is that stream's, so one asked
   * before the last landed is answered in order if that stream answers it
   * in order. Core's `stream()` then passes each `next()` straight through
   * instead of chaining it behind the last with a `then` of its own (see
   * `streamReading`). Unknown (a stream that does not say) counts as under way.
   */
  get [streamReading](): boolean {
    return this.delivered && !this.finished && (this.rest as Partial<ReadingAware>)[streamReading] !== false;
  }

  [streamEnd](callback: () => void): boolean {
    if (this.finished || this.onEnded !== undefined) return false;
    this.onEnded = callback;
    return true;
  }

  next(): Promise<Result> {
    if (this.finished) return Promise.resolve(this.end());
    if (!this.delivered) {
      this.delivered = true;
      return Promise.resolve(this.first as Result);
    }
    let pulled: Promise<IteratorResult<ChatCompletionChunk>>;
    try {
      pulled = this.rest.next();
    } catch (error) {
      return Promise.reject(this.failed(error));
    }
    return pulled.then(this.onResult, this.onError);
  }

  async return(): Promise<Result> {
    if (this.finished) return this.end();
    try {
      await this.rest.return?.();
    } finally {
      this.end();
    }
    return { done: true, value: undefined };
  }

  /**
   * Lets the deployment's request outlive the outer call (core's
   * `TransportStream.outliveCall`, through a hop): its inner call stops
   * following the outer call's abort and deadline, so that a cache outside
   * the router can leave it running for the calls that joined it when the
   * call that sent it leaves. Whoever asked then owes it a `return()`.
   *
   * @returns whether it now outlives the outer call
   */
  outliveCall(): boolean {
    return !this.finished && outliveParent(this.inner);
  }

  /** Drops the stream unread (a hedge's loser that answered too late). */
  discard(): Promise<void> {
    return this.return().then(
      () => {},
      () => {},
    );
  }

  private result(result: IteratorResult<ChatCompletionChunk>): Result {
    if (this.inner.usage) this.outer.usage = this.inner.usage;
    return result.done ? this.end() : (result as Result);
  }

  private error(error: unknown): never {
    throw this.failed(error);
  }

  private failed(error: unknown): unknown {
    this.end();
    return error;
  }

  private end(): Result {
    this.finished = true;
    this.picked.release();
    const onEnded = this.onEnded;
    this.onEnded = undefined;
    onEnded?.();
    return { done: true, value: undefined };
  }
}
