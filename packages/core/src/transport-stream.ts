import type { CompletionContext } from './context.js';
import { EventReader } from './read-events.js';
import type { ChatCompletionChunk } from './schemas.js';
import { SettlingStream, type StreamObserver } from './settlement.js';

export type { StreamObserver };

/** A call's stream as the transport parsed it, which tells each chunk's upstream JSON text; see {@link transportStream}. */
export interface TransportStream extends AsyncIterable<ChatCompletionChunk> {
  /**
   * The `data:` text of the chunk the last `next()` resolved with, as the
   * upstream sent it, when the transport's check left that chunk exactly
   * as parsed (nothing sanitised); else undefined. Read it before the
   * chunk is handed to anyone who may change it: the text is the chunk as
   * it arrived.
   */
  lastJson(): string | undefined;
  /**
   * Tells `observer` of every result from now on (a chunk, the end, or
   * the failure), inside the step that hands it on and before whoever
   * called `next()` gets it. A middleware that must see every chunk (to
   * keep it) can then hand this stream's own promises to its caller
   * instead of a `then` of its own on each, which costs a promise and a
   * microtask a chunk. One observer per stream; a later one replaces it.
   *
   * @param observer - what runs on each result
   */
  observe(observer: StreamObserver): void;
  /**
   * Lets the upstream request outlive its call's abort (the caller's
   * signal, the call's deadline, a hedge it lost): from then on it ends
   * when it is read to its end, when its consumer stops (`return()`),
   * at its own limits (the idle limit between chunks) or when the
   * pipeline closes. For a middleware that shares one upstream stream
   * among several calls, such as a cache's single flight, so that the
   * call that sent it can leave without cutting it for the others; that
   * middleware then owes it a `return()` once the last reader has left,
   * and its own call's reader must watch the call's abort itself. Calls
   * made earlier are not undone: a stream already aborted or ended stays
   * so, and says so by returning false.
   *
   * @returns whether the request now outlives its call
   */
  outliveCall(): boolean;
}

/*
 * Why a middleware may trust the text: `ctx.chunks` is still the stream
 * the pipeline wrapped around the transport's reader, and nobody has been
 * handed a chunk of it (`readAhead` may hold the first, read by core and
 * changed by nothing; the reader's text is still that chunk's). A middleware inside the asking one that wanted the
 * chunks had to read them or put its own iterator in `ctx.chunks`, so no
 * chunk has been seen, let alone changed, by anything but the transport.
 * The reader keeps the text in one field, overwritten per chunk: no
 * `keepRawJson`, no property on the chunk, nothing for the GC.
 */

/**
 * `ctx.chunks` when it is still the stream the transport made, unread and
 * not wrapped by any middleware, so that each chunk's upstream JSON text
 * can be taken as it is read (`lastJson()`) instead of serialising the
 * chunk again: what a cache or a proxy keeps or forwards. Undefined
 * otherwise: a middleware inside replaced or read the stream, or the
 * transport is not one of core's. Reading it reads `ctx.chunks`, settling
 * the call as any read does.
 *
 * @param ctx - the call, after `await next()` resolved with a stream
 * @returns the stream with `lastJson()`, or undefined
 * @example
 * ```ts
 * await next();
 * const stream = transportStream(ctx);
 * const kept: string[] = [];
 * ctx.chunks = (async function* () {
 *   for await (const chunk of stream ?? ctx.chunks!) {
 *     kept.push(stream?.lastJson() ?? JSON.stringify(chunk));
 *     yield chunk;
 *   }
 * })();
 * ```
 */
export function transportStream(ctx: CompletionContext): TransportStream | undefined {
  const chunks = ctx.chunks;
  if (!(chunks instanceof SettlingStream) || !chunks.unread() || !(chunks.source instanceof EventReader)) return undefined;
  return chunks;
}

/**
 * Reads the first chunk of the call's stream ahead, so that a failure at
 * it (an SSE error event, a stream cut before any chunk) surfaces now,
 * while nothing has reached the caller and the call can still be retried;
 * the chunk is held for the stream's first reader. Done on the stream the
 * pipeline put around the transport's, which stays in `ctx.chunks`, so a
 * middleware outside still gets it from {@link transportStream}, with the
 * upstream's text of every chunk, the one read ahead included. Undefined,
 * reading nothing, when `ctx.chunks` is any other stream (a middleware's,
 * or one already read): the caller then reads ahead its own way.
 *
 * @param ctx - the call, after `await next()` resolved with a stream
 * @returns a promise that settles once the first chunk (or the end) is read, rejecting with what reading it threw; or undefined
 * @example
 * ```ts
 * await next();
 * const ahead = readAhead(ctx);
 * if (ahead) await ahead;
 * else ctx.chunks = await readFirstMyOwnWay(ctx.chunks!);
 * ```
 */
export function readAhead(ctx: CompletionContext): Promise<void> | undefined {
  const chunks = ctx.chunks;
  if (!(chunks instanceof SettlingStream) || !chunks.unread()) return undefined;
  return chunks.peek();
}
