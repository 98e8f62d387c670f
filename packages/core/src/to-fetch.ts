import type { CallOptions } from './call-options.js';
import type { CompletionContext } from './context.js';
import { errorAnswer } from './error-response.js';
import { ValidationError } from './errors.js';
import type { ChatCompletionChunk, ChatCompletionRequest } from './schemas.js';

/**
 * A WHATWG `fetch`: what the openai SDK and the AI SDK's providers take as
 * their `fetch` option, and, called with a `Request` alone, a server's
 * handler (`Bun.serve({ fetch })`, `Deno.serve(handler)`, Hono, a Worker).
 */
export type FetchFunction = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** The part of a pipeline {@link toFetch} calls (any `Pipeline<S>` is one). */
export interface RunsCompletions {
  run(request: ChatCompletionRequest, options?: CallOptions): Promise<CompletionContext>;
}

/** Options of {@link toFetch}. */
export interface ToFetchOptions {
  /**
   * Where requests other than `POST …/chat/completions` go: a fetch (the
   * global `fetch` by default, looked up at each call), or `null` to answer
   * them 404, as a server handler should.
   */
  fallback?: FetchFunction | null;
  /** Tags for the call from the request's headers (a tenant or user header), for keyed middleware. */
  tags?: (headers: Headers) => Record<string, string> | undefined;
}

const noChunks: AsyncIterable<ChatCompletionChunk> = { [Symbol.asyncIterator]: () => ({ next: async () => ({ done: true, value: undefined }) }) };
const encoder = new TextEncoder();
const done = encoder.encode('data: [DONE]\n\n');
/** Upstream headers worth handing back: the request id and the rate-limit figures. */
const forwarded = /^(x-request-id|x-ratelimit-|openai-processing-ms$)/;

/**
 * Turns a pipeline into a `fetch` that sends `POST …/chat/completions`
 * through it and answers with a real `Response`, so an SDK built on fetch
 * gets every middleware with no other change:
 *
 * - a completion is answered as JSON; a stream as `text/event-stream`,
 *   each chunk re-encoded as it arrives (`data: {…}`, then `data: [DONE]`),
 *   the usage chunk kept when the request asked for it. The answer is
 *   made once the first chunk is in, so a failure before it (after
 *   sluice's retries) is still an HTTP error; a failure after it is an
 *   SSE `data: {"error": …}` event, which the SDKs raise;
 * - a sluice error is the status and OpenAI error body the SDKs expect
 *   (429 and an open circuit with `retry-after`), with
 *   `x-should-retry: false` so the openai SDK does not retry on top of
 *   sluice (give the AI SDK `maxRetries: 0` for the same);
 * - the request's `AbortSignal` cancels the call and its upstream request,
 *   and the promise or body rejects with the signal's reason, as fetch does;
 * - anything else goes to `fallback` unchanged.
 *
 * The request's `Authorization` header is ignored: the pipeline's
 * transport holds the key. No Node API is used: it runs wherever
 * `Response` and `ReadableStream` exist.
 *
 * @param pipeline - the pipeline to send completions through
 * @param options - `fallback` for other requests, `tags` from headers
 * @example
 * ```ts
 * const openai = new OpenAI({ apiKey: 'unused', baseURL: 'https://api.deepseek.com/v1', fetch: toFetch(llm) });
 * const reply = await openai.chat.completions.create({ model: 'deepseek-v3.2', messages });
 * ```
 */
export function toFetch(pipeline: RunsCompletions, options: ToFetchOptions = {}): FetchFunction {
  const { fallback, tags } = options;
  return async function sluiceFetch(input, init) {
    const request = typeof input === 'object' && !(input instanceof URL) ? input : undefined;
    const method = (init?.method ?? request?.method ?? 'GET').toUpperCase();
    const url = request ? request.url : String(input);
    if (method !== 'POST' || !isCompletions(url)) {
      if (fallback === null) return answer(404, { error: { message: `no route for ${method} ${new URL(url).pathname}`, type: 'not_found_error', param: null, code: 'not_found' } });
      return (fallback ?? globalThis.fetch)(input, init);
    }
    const signal = init?.signal ?? request?.signal ?? undefined;
    let body: ChatCompletionRequest;
    try {
      body = parseBody(init?.body !== undefined && init.body !== null ? await bodyText(init.body) : await request?.text());
    } catch (error) {
      return errorResponse(error);
    }
    const call: CallOptions = {};
    if (signal) call.signal = signal;
    if (tags) {
      const found = tags(new Headers(init?.headers ?? request?.headers));
      if (found) call.tags = found;
    }
    let ctx: CompletionContext;
    try {
      ctx = await pipeline.run(body, call);
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      return errorResponse(error);
    }
    const headers = forwardedHeaders(ctx.responseHeaders);
    if (!ctx.stream) {
      headers['content-type'] = 'application/json';
      return new Response(JSON.stringify(ctx.response), { status: 200, headers });
    }
    return streamResponse(ctx.chunks, headers, signal);
  };
}

async function streamResponse(
  chunks: AsyncIterable<ChatCompletionChunk> | undefined,
  headers: Record<string, string>,
  signal: AbortSignal | undefined,
): Promise<Response> {
  const iterator = (chunks ?? noChunks)[Symbol.asyncIterator]();
  let first: IteratorResult<ChatCompletionChunk>;
  try {
    first = await iterator.next();
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    return errorResponse(error);
  }
  let pending: IteratorResult<ChatCompletionChunk> | undefined = first;
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        let next: IteratorResult<ChatCompletionChunk>;
        try {
          next = pending ?? (await iterator.next());
        } catch (error) {
          if (signal?.aborted) return controller.error(signal.reason);
          // Past the first chunk the status is sent: the error goes in the stream, as OpenAI sends it.
          controller.enqueue(encoder.encode(`data: ${JSON.stringify(errorAnswer(error).body)}\n\n`));
          return controller.close();
        }
        pending = undefined;
        if (next.done) {
          controller.enqueue(done);
          return controller.close();
        }
        controller.enqueue(encoder.encode(`data: ${JSON.stringify(next.value)}\n\n`));
      },
      // The consumer stopped reading: end the call, which drops the upstream request.
      async cancel() {
        await iterator.return?.();
      },
    },
    // One chunk read ahead while the reader handles the last (a slow reader
    // still holds the upstream back): without it every chunk waits a round
    // trip between the SDK's read and the upstream's.
    { highWaterMark: 1 },
  );
  headers['content-type'] = 'text/event-stream; charset=utf-8';
  headers['cache-control'] = 'no-cache';
  return new Response(body, { status: 200, headers });
}

/** Whether a URL names the chat-completions endpoint (any base path, any query). */
function isCompletions(url: string): boolean {
  const query = url.indexOf('?');
  const path = query === -1 ? url : url.slice(0, query);
  return path.endsWith('/chat/completions');
}

async function bodyText(body: NonNullable<RequestInit['body']>): Promise<string> {
  if (typeof body === 'string') return body;
  return new Response(body).text();
}

function parseBody(text: string | undefined): ChatCompletionRequest {
  let json: unknown;
  try {
    json = JSON.parse(text ?? '');
  } catch {
    throw new ValidationError('body', 'is not JSON');
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new ValidationError('body', 'is not a JSON object');
  return json as ChatCompletionRequest;
}

function forwardedHeaders(upstream: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (upstream) for (const name in upstream) if (forwarded.test(name)) out[name] = upstream[name] as string;
  return out;
}

function errorResponse(error: unknown): Response {
  const { status, headers, body } = errorAnswer(error);
  return new Response(JSON.stringify(body), { status, headers });
}

function answer(status: number, body: object): Response {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', 'x-should-retry': 'false' } });
}
