import { isIP } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, type Dispatcher, interceptors } from 'undici';
import { z } from 'zod';
import type { Clock } from './clock.js';
import { AbortSource } from './abort-source.js';
import { abortReason, onAbort } from './call.js';
import type { CompletionContext } from './context.js';
import { AbortError, MalformedResponseError, SluiceError, StreamCutError, TimeoutError } from './errors.js';
import type { Transport } from './transport.js';
import type { ChatCompletion, ChatCompletionChunk, Usage } from './schemas.js';
import { errorFromNetwork, errorFromUpstream, redact } from './upstream-errors.js';
import { parseOptions } from './validate.js';

const optionsSchema = z.object({
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKey: z.string().min(1).optional(),
  headers: z.record(z.string(), z.string()).optional(),
  connections: z.number().int().positive().optional(),
  connectTimeoutMs: z.number().positive().optional(),
  firstByteTimeoutMs: z.number().positive().optional(),
  idleTimeoutMs: z.number().positive().optional(),
  attemptTimeoutMs: z.number().positive().optional(),
  includeUsage: z.boolean().optional(),
  dnsCache: z.boolean().optional(),
  name: z.string().min(1).optional(),
  dispatcher: z.custom<Dispatcher>((value) => typeof (value as Dispatcher | undefined)?.dispatch === 'function').optional(),
});

/** Options of {@link openAICompatible}. */
export type OpenAICompatibleOptions = z.input<typeof optionsSchema>;

/** Largest error body read, so a misbehaving upstream cannot fill memory. */
const maxErrorBody = 64 * 1024;

/**
 * A transport for any OpenAI-compatible `POST /chat/completions` endpoint,
 * over an undici keep-alive pool.
 *
 * - `connections` per origin (default 100: the original client's 100 per host);
 * - timeouts: `connectTimeoutMs` 10 s, `firstByteTimeoutMs` (to response
 *   headers) 60 s, `idleTimeoutMs` between stream chunks 60 s, and
 *   `attemptTimeoutMs` 60 s for a whole non-stream attempt or a stream's
 *   start. All but connect run on the call's clock;
 * - DNS answers cached (undici's dns interceptor) unless `dnsCache: false`;
 * - streams parsed with eventsource-parser; `stream_options.include_usage`
 *   is requested unless `includeUsage: false`, and the usage chunk is
 *   hidden from a caller who did not ask for it;
 * - the API key goes only into the Authorization header, and is redacted
 *   from every error message.
 *
 * @param options - `baseUrl` (with its `/v1`), `apiKey`, extra `headers`, pool and timeout settings
 * @throws ValidationError naming the bad option
 * @example
 * ```ts
 * const transport = openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey: process.env.DEEPSEEK_API_KEY });
 * const llm = createPipeline({ transport });
 * ```
 */
export function openAICompatible(options: OpenAICompatibleOptions): Transport {
  const config = parseOptions(optionsSchema, options, 'openAICompatible');
  const url = new URL(config.baseUrl);
  const basePath = url.pathname.replace(/\/+$/, '');
  const origin = `${url.protocol}//${url.host}`;
  const secrets = config.apiKey ? [config.apiKey] : [];
  const connectTimeoutMs = config.connectTimeoutMs ?? 10_000;
  const firstByteTimeoutMs = config.firstByteTimeoutMs ?? 60_000;
  const idleTimeoutMs = config.idleTimeoutMs ?? 60_000;
  const attemptTimeoutMs = config.attemptTimeoutMs ?? 60_000;
  const includeUsage = config.includeUsage ?? true;
  const ownAgent = config.dispatcher
    ? undefined
    : new Agent({
        connections: config.connections ?? 100,
        connect: { timeout: connectTimeoutMs },
        // Our own timers (on the call's clock) enforce these.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
  // An IP literal (a local vLLM, the mock upstream) has nothing to resolve.
  const cacheDns = config.dnsCache !== false && isIP(url.hostname.replace(/^\[|\]$/g, '')) === 0;
  const dispatcher: Dispatcher =
    config.dispatcher ?? (cacheDns ? (ownAgent as Agent).compose(interceptors.dns()) : (ownAgent as Agent));
  let closing: Promise<void> | undefined;
  const baseHeaders: Record<string, string> = { 'content-type': 'application/json', ...config.headers };
  if (config.apiKey) baseHeaders.authorization = `Bearer ${config.apiKey}`;

  const jsonHeaders = { ...baseHeaders, accept: 'application/json' };
  const streamHeaders = { ...baseHeaders, accept: 'text/event-stream' };

  async function send(ctx: CompletionContext): Promise<void> {
    const callerAskedUsage = ctx.request.stream_options?.include_usage === true;
    const body = ctx.stream
      ? {
          ...ctx.request,
          stream: true,
          ...(includeUsage && !callerAskedUsage
            ? { stream_options: { ...ctx.request.stream_options, include_usage: true } }
            : {}),
        }
      : { ...ctx.request, stream: false };
    const attempt = new Attempt(ctx, ctx.clock, firstByteTimeoutMs, attemptTimeoutMs);

    let response: Dispatcher.ResponseData;
    try {
      response = await dispatcher.request({
        origin,
        path: `${basePath}/chat/completions`,
        method: 'POST',
        headers: ctx.stream ? streamHeaders : jsonHeaders,
        body: JSON.stringify(body),
        signal: attempt.signal as unknown as AbortSignal,
      });
    } catch (error) {
      attempt.done();
      throw attempt.reason() ?? errorFromNetwork(error, connectTimeoutMs, secrets);
    }
    attempt.headersReceived();
    const headers = flattenHeaders(response.headers);
    ctx.responseHeaders = headers;
    const now = ctx.clock.now();

    if (response.statusCode < 200 || response.statusCode >= 300) {
      const text = await readText(response.body, attempt, maxErrorBody);
      attempt.done();
      throw errorFromUpstream({ status: response.statusCode, body: parseJson(text) ?? text, headers, now, secrets });
    }
    const contentType = headers['content-type'] ?? '';
    if (!ctx.stream || !contentType.includes('text/event-stream')) {
      const text = await readText(response.body, attempt, Infinity);
      attempt.done();
      const json = parseJson(text);
      if (isErrorBody(json)) throw errorFromUpstream({ status: undefined, body: json, headers, now, secrets });
      if (!isCompletion(json)) {
        const what = contentType.includes('html') ? 'an HTML page' : 'a body that is not a chat completion';
        throw new MalformedResponseError(redact(`upstream answered ${response.statusCode} with ${what}`, secrets), {
          status: response.statusCode,
          headers,
        });
      }
      if (ctx.stream) {
        throw new MalformedResponseError('upstream answered a stream request without an event stream', { headers });
      }
      ctx.response = json;
      ctx.usage = json.usage ?? undefined;
      return;
    }
    // The stream runs past the attempt timeout; the idle limit guards it.
    attempt.streaming(idleTimeoutMs);
    ctx.chunks = readEvents(ctx, response.body, attempt, { hideUsage: !callerAskedUsage, headers, secrets });
  }

  return {
    name: config.name ?? 'openai-compatible',
    origin: `${origin}${basePath}`,
    send,
    close() {
      closing ??= ownAgent?.close() ?? Promise.resolve();
      return closing;
    },
  };
}

/**
 * One HTTP attempt's abort source and its one timer. The timer is armed
 * for the nearest deadline and, when it fires early for a phase that has
 * moved on, re-arms for what is left: one timer per attempt instead of
 * one per phase (and none reset per chunk).
 */
class Attempt {
  private readonly source = new AbortSource();
  private readonly unlink: () => void;
  private timer: unknown;
  private firstByteAt: number | undefined;
  private attemptAt: number | undefined;
  private idleMs: number | undefined;
  /** When the stream last received bytes (idle phase only). */
  lastActivity = 0;

  constructor(
    ctx: CompletionContext,
    private readonly clock: Clock,
    private readonly firstByteMs: number,
    private readonly attemptMs: number,
  ) {
    this.unlink = onAbort(ctx, () => this.abort(abortReason(ctx)));
    const now = clock.now();
    this.firstByteAt = now + firstByteMs;
    this.attemptAt = now + attemptMs;
    this.arm(Math.min(firstByteMs, attemptMs));
  }

  /** What undici watches; it accepts any object with `aborted` and `addEventListener`. */
  get signal(): AbortSource {
    return this.source;
  }

  /** The headers are in: the first-byte limit is met. */
  headersReceived(): void {
    this.firstByteAt = undefined;
  }

  /** A stream has started: the attempt limit gives way to the idle limit between chunks. */
  streaming(idleMs: number): void {
    this.firstByteAt = undefined;
    this.attemptAt = undefined;
    this.idleMs = idleMs;
    this.lastActivity = this.clock.now();
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.arm(idleMs);
  }

  private arm(ms: number): void {
    this.timer = this.clock.setTimeout(() => this.check(), Math.max(0, ms));
  }

  private check(): void {
    this.timer = undefined;
    if (this.source.aborted) return;
    const now = this.clock.now();
    // The attempt limit wins a tie: it is the one a caller configures for the whole exchange.
    if (this.attemptAt !== undefined && now >= this.attemptAt) return this.abort(new TimeoutError('attempt', this.attemptMs));
    if (this.firstByteAt !== undefined && now >= this.firstByteAt) {
      return this.abort(new TimeoutError('first-byte', this.firstByteMs));
    }
    if (this.idleMs !== undefined && now - this.lastActivity >= this.idleMs) {
      return this.abort(new TimeoutError('idle', this.idleMs));
    }
    const next = Math.min(
      this.firstByteAt ?? Infinity,
      this.attemptAt ?? Infinity,
      this.idleMs === undefined ? Infinity : this.lastActivity + this.idleMs,
    );
    if (next !== Infinity) this.arm(next - now);
  }

  abort(reason: unknown): void {
    if (this.source.aborted) return;
    this.source.abort(reason instanceof SluiceError ? reason : new AbortError('The call was aborted', { cause: reason }));
  }

  /** The typed reason this attempt was aborted for, if it was. */
  reason(): SluiceError | undefined {
    return this.source.aborted ? (this.source.reason as SluiceError) : undefined;
  }

  done(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.unlink();
  }
}

/** Reads SSE events into chunks; the attempt's timer watches for silence between them. */
async function* readEvents(
  ctx: CompletionContext,
  body: Dispatcher.ResponseData['body'],
  attempt: Attempt,
  options: { hideUsage: boolean; headers: Record<string, string>; secrets: readonly string[] },
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const { clock } = ctx;
  const { headers, secrets } = options;
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  // Node's StringDecoder keeps a character split across packets whole, and
  // costs less to make than a TextDecoder, once per stream.
  const decoder = new StringDecoder('utf8');
  let finished = false;
  let received = 0;
  try {
    for await (const bytes of body) {
      attempt.lastActivity = clock.now();
      parser.feed(decoder.write(bytes as Buffer));
      for (const event of events.splice(0)) {
        if (finished) continue;
        if (event.data === '[DONE]') {
          finished = true;
          continue;
        }
        const json = parseJson(event.data);
        if (event.event === 'error' || isErrorBody(json)) {
          throw errorFromUpstream({ status: undefined, body: json ?? event.data, headers, now: clock.now(), secrets });
        }
        if (!isChunk(json)) {
          throw new MalformedResponseError(redact(`malformed SSE event: ${event.data.slice(0, 100)}`, secrets), { headers });
        }
        if (json.usage) ctx.usage = json.usage as Usage;
        if (options.hideUsage && json.choices.length === 0 && json.usage) continue;
        received++;
        yield json;
      }
    }
    if (!finished) throw new StreamCutError(`the stream ended without [DONE] after ${received} chunks`, received, { headers });
  } catch (error) {
    const reason = attempt.reason();
    if (reason) throw reason;
    if (error instanceof SluiceError) throw error;
    throw new StreamCutError(`the stream broke after ${received} chunks: ${redact(String((error as Error)?.message ?? error), secrets)}`, received, {
      cause: error,
      headers,
    });
  } finally {
    // Stopped before the end (break, error): abort so undici drops the socket
    // instead of leaving it half-read in the pool.
    if (!finished) attempt.abort(new AbortError('The stream was cancelled by its consumer'));
    attempt.done();
  }
}

async function readText(body: Dispatcher.ResponseData['body'], attempt: Attempt, limit: number): Promise<string> {
  try {
    if (limit === Infinity) return await body.text();
    let text = '';
    const decoder = new TextDecoder();
    for await (const bytes of body) {
      text += decoder.decode(bytes as Uint8Array, { stream: true });
      if (text.length >= limit) {
        body.destroy();
        break;
      }
    }
    return text;
  } catch (error) {
    throw attempt.reason() ?? new StreamCutError(`the response body broke: ${(error as Error)?.message}`, 0, { cause: error });
  }
}

function flattenHeaders(headers: Dispatcher.ResponseData['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null;

function isErrorBody(value: unknown): boolean {
  return isObject(value) && value.error !== undefined && value.error !== null && !Array.isArray(value.choices);
}

function isCompletion(value: unknown): value is ChatCompletion {
  return isObject(value) && Array.isArray(value.choices);
}

function isChunk(value: unknown): value is ChatCompletionChunk {
  return isObject(value) && Array.isArray(value.choices);
}
