import type { CompletionContext } from './context.js';
import type { ChatCompletionChunk } from './schemas.js';

/**
 * The iterator `stream()` returns: runs the call on the first `next()`,
 * then passes straight through to the call's chunks.
 */
export class LazyStream implements AsyncIterableIterator<ChatCompletionChunk> {
  private inner: AsyncIterator<ChatCompletionChunk> | undefined;
  private closed = false;

  constructor(private readonly start: () => Promise<CompletionContext>) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    // Not async: once started, each chunk goes straight through, without a
    // promise and a microtask of this layer's own.
    if (this.closed) return Promise.resolve({ done: true, value: undefined });
    if (this.inner) return this.inner.next() as Promise<IteratorResult<ChatCompletionChunk, undefined>>;
    return this.first();
  }

  private async first(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    const ctx = await this.start();
    this.inner = (ctx.chunks ?? emptyChunks)[Symbol.asyncIterator]();
    return this.inner.next() as Promise<IteratorResult<ChatCompletionChunk, undefined>>;
  }

  async return(): Promise<IteratorResult<ChatCompletionChunk, undefined>> {
    this.closed = true;
    await this.inner?.return?.();
    return { done: true, value: undefined };
  }
}

const emptyChunks: AsyncIterable<ChatCompletionChunk> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
