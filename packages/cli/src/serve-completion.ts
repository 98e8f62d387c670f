import { once } from 'node:events';
import type { ServerResponse } from 'node:http';
import { type CallOptions, type ChatCompletionChunk, type ChatCompletionRequest, type RunsCompletions, rawJson, toFetch } from '@sluice/core';

/** Upstream headers worth handing back, as core's `toFetch` does: the request id and the rate-limit figures. */
const forwarded = /^(x-request-id|x-ratelimit-|openai-processing-ms$)/;
const noChunks: AsyncIterable<ChatCompletionChunk> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };

/** What an error is answered with: status, headers and the OpenAI error body as text. */
export interface ErrorAnswerText {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/**
 * The answer core's `toFetch` gives for a failed call (the status from the
 * error's data, the OpenAI error body, `retry-after`, `x-should-retry`):
 * got from `toFetch` itself over a pipeline that fails with `error`, so
 * the server and every SDK's fetch answer an error alike.
 *
 * @param error - what the pipeline threw
 */
export async function errorAnswerText(error: unknown): Promise<ErrorAnswerText> {
  const failing: RunsCompletions = { run: () => Promise.reject(error) };
  const response = await toFetch(failing, { fallback: null })('http://sluice.local/v1/chat/completions', { method: 'POST', body: '{}' });
  const headers: Record<string, string> = {};
  response.headers.forEach((value, name) => (headers[name] = value));
  return { status: response.status, headers, text: await response.text() };
}

/**
 * Sends a request through the pipeline and writes the answer to a Node
 * response, as core's `toFetch` would answer it but without building a
 * WHATWG `Request`, `Response` and `ReadableStream` per call (which cost a
 * proxy more CPU than the pipeline itself):
 *
 * - a completion is JSON, written in one piece with its length;
 * - an answer the transport checked and left as parsed is written as the
 *   upstream's own text (`rawJson`, with a transport made with
 *   `keepRawJson`), not serialised again: the pipeline's middleware must
 *   then not rewrite answers in place (none of sluice's do);
 * - a stream is `text/event-stream`, answered once the first chunk is in
 *   (so a failure before it, after sluice's retries, is still an HTTP
 *   error), each chunk as `data: {…}`, then `data: [DONE]`; a failure
 *   after it is a `data: {"error": …}` event. Chunks that arrive together
 *   leave in one write (one chunk of the chunked encoding);
 * - a failed call is the OpenAI error answer of {@link errorAnswerText};
 * - when `call.signal` aborts (the client left), the call and its
 *   upstream request end and the connection is dropped.
 *
 * @param pipeline - what runs the call
 * @param body - the parsed request
 * @param call - signal, tags, deadline
 * @param target - the response to write
 */
export async function answerCompletion(pipeline: RunsCompletions, body: ChatCompletionRequest, call: CallOptions, target: ServerResponse): Promise<void> {
  let ctx: Awaited<ReturnType<RunsCompletions['run']>>;
  try {
    ctx = await pipeline.run(body, call);
  } catch (error) {
    if (call.signal?.aborted) return void target.destroy();
    return sendError(target, error);
  }
  const headers: Record<string, string> = {};
  const upstream = ctx.responseHeaders;
  if (upstream) for (const name in upstream) if (forwarded.test(name)) headers[name] = upstream[name] as string;
  // How the cache answered (hit, shared, miss, bypass), when the server has one.
  const cached = ctx.state.cache?.status;
  if (cached !== undefined) headers['x-sluice-cache'] = cached;
  // Which deployment answered, when the server routes across several (its id from the config: no URL, no key).
  const deployment = ctx.state.router?.deployment;
  if (deployment !== undefined) headers['x-sluice-deployment'] = deployment;
  if (!ctx.stream) {
    const response = ctx.response;
    const text = (response && rawJson(response)) ?? JSON.stringify(response);
    headers['content-type'] = 'application/json';
    headers['content-length'] = String(Buffer.byteLength(text));
    target.writeHead(200, headers);
    return void target.end(text);
  }

  const iterator = (ctx.chunks ?? noChunks)[Symbol.asyncIterator]();
  let next: IteratorResult<ChatCompletionChunk>;
  try {
    next = await iterator.next();
  } catch (error) {
    if (call.signal?.aborted) return void target.destroy();
    return sendError(target, error);
  }
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  target.writeHead(200, headers);
  const events = new EventBatch(target);
  try {
    while (!next.done) {
      if (target.destroyed) return void (await iterator.return?.());
      if (!events.add(`data: ${rawJson(next.value) ?? JSON.stringify(next.value)}\n\n`)) await events.drained();
      next = await iterator.next();
    }
    events.end('data: [DONE]\n\n');
  } catch (error) {
    if (call.signal?.aborted || target.destroyed) return void target.destroy();
    // Past the first chunk the status is sent: the error goes in the stream, as OpenAI sends it.
    events.end(`data: ${(await errorAnswerText(error)).text}\n\n`);
  }
}

/**
 * The SSE events of one answer, joined into one `write` per tick. Chunks
 * parsed from one upstream read reach the loop within one tick; written
 * one by one, each would be a chunk of the chunked encoding, four writes
 * into the socket's buffer (size, CRLF, data, CRLF) before the one
 * `writev` that Node's cork makes of them anyway.
 */
class EventBatch {
  private text = '';
  private scheduled = false;
  /** False once a write was refused (the socket's buffer is full): the loop waits for `drain`. */
  private flowing = true;

  constructor(private readonly target: ServerResponse) {}

  /** Queues an event; false when the loop should wait for {@link drained} before the next. */
  add(event: string): boolean {
    this.text += event;
    if (!this.scheduled) {
      this.scheduled = true;
      process.nextTick(() => this.flush());
    }
    return this.flowing;
  }

  /** Resolves once the socket took what was written, or closed. */
  async drained(): Promise<void> {
    this.flush();
    if (this.flowing || this.target.destroyed) return;
    await Promise.race([once(this.target, 'drain'), once(this.target, 'close')]);
    this.flowing = true;
  }

  /** Writes what is queued and `last`, and ends the answer. */
  end(last: string): void {
    const text = this.text + last;
    this.text = '';
    this.target.end(text);
  }

  private flush(): void {
    this.scheduled = false;
    if (this.text === '' || this.target.writableEnded || this.target.destroyed) return;
    const text = this.text;
    this.text = '';
    if (!this.target.write(text)) this.flowing = false;
  }
}

async function sendError(target: ServerResponse, error: unknown): Promise<void> {
  const answer = await errorAnswerText(error);
  answer.headers['content-length'] = String(Buffer.byteLength(answer.text));
  target.writeHead(answer.status, answer.headers);
  target.end(answer.text);
}
