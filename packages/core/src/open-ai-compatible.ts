import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { Agent, type Dispatcher, interceptors } from 'undici';
import { z } from 'zod';
import type { Clock } from './clock.js';
import type { CompletionContext } from './context.js';
import { AbortError, MalformedResponseError, SluiceError, StreamCutError, TimeoutError } from './errors.js';
import type { Transport } from './pipeline.js';
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
  const dispatcher: Dispatcher =
    config.dispatcher ?? (config.dnsCache === false ? (ownAgent as Agent) : (ownAgent as Agent).compose(interceptors.dns()));
  let closing: Promise<void> | undefined;
  const baseHeaders: Record<string, string> = { 'content-type': 'application/json', ...config.headers };
  if (config.apiKey) baseHeaders.authorization = `Bearer ${config.apiKey}`;

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
    const attempt = new Attempt(ctx, ctx.clock, attemptTimeoutMs);
    attempt.arm('first-byte', firstByteTimeoutMs);

    let response: Dispatcher.ResponseData;
    try {
      response = await dispatcher.request({
        origin,
        path: `${basePath}/chat/completions`,
        method: 'POST',
        headers: { ...baseHeaders, accept: ctx.stream ? 'text/event-stream' : 'application/json' },
        body: JSON.stringify(body),
        signal: attempt.signal,
      });
    } catch (error) {
      attempt.done();
      throw attempt.reason() ?? errorFromNetwork(error, connectTimeoutMs, secrets);
    }
    attempt.disarm('first-byte');
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
    // The stream runs past the attempt timeout; the idle timer guards it.
    attempt.disarm('attempt');
    ctx.chunks = readEvents(ctx, response.body, attempt, {
      hideUsage: !callerAskedUsage,
      idleTimeoutMs,
      headers,
      secrets,
    });
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
 * One HTTP attempt's abort controller and timers. Aborts when the call's
 * signal does, or when a timer fires, with a typed reason.
 */
class Attempt {
  private readonly controller = new AbortController();
  private readonly timers = new Map<string, unknown>();
  private readonly unlink: () => void;

  constructor(
    private readonly ctx: CompletionContext,
    private readonly clock: Clock,
    attemptTimeoutMs: number,
  ) {
    const onAbort = () => this.abort(ctx.signal.reason);
    if (ctx.signal.aborted) onAbort();
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    this.unlink = () => ctx.signal.removeEventListener('abort', onAbort);
    this.arm('attempt', attemptTimeoutMs);
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  arm(phase: 'first-byte' | 'attempt' | 'idle', ms: number): void {
    this.disarm(phase);
    this.timers.set(phase, this.clock.setTimeout(() => this.abort(new TimeoutError(phase, ms)), ms));
  }

  disarm(phase: string): void {
    const timer = this.timers.get(phase);
    if (timer !== undefined) this.clock.clearTimeout(timer);
    this.timers.delete(phase);
  }

  abort(reason: unknown): void {
    if (!this.controller.signal.aborted) {
      this.controller.abort(reason instanceof SluiceError ? reason : new AbortError('The call was aborted', { cause: reason }));
    }
  }

  /** The typed reason this attempt was aborted for, if it was. */
  reason(): SluiceError | undefined {
    return this.controller.signal.aborted ? (this.controller.signal.reason as SluiceError) : undefined;
  }

  done(): void {
    for (const phase of [...this.timers.keys()]) this.disarm(phase);
    this.unlink();
  }
}

/**
 * Reads SSE events into chunks. The idle timer is not reset per chunk (a
 * timer per chunk would dominate a fast stream); it re-arms itself for
 * the remaining time when it fires after recent activity.
 */
async function* readEvents(
  ctx: CompletionContext,
  body: Dispatcher.ResponseData['body'],
  attempt: Attempt,
  options: { hideUsage: boolean; idleTimeoutMs: number; headers: Record<string, string>; secrets: readonly string[] },
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const { clock } = ctx;
  const { idleTimeoutMs, headers, secrets } = options;
  let lastActivity = clock.now();
  let idleTimer: unknown;
  const armIdle = (ms: number) => {
    idleTimer = clock.setTimeout(() => {
      const quiet = clock.now() - lastActivity;
      if (quiet >= idleTimeoutMs) attempt.abort(new TimeoutError('idle', idleTimeoutMs));
      else armIdle(idleTimeoutMs - quiet);
    }, ms);
  };
  armIdle(idleTimeoutMs);

  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  const decoder = new TextDecoder();
  let finished = false;
  let received = 0;
  try {
    for await (const bytes of body) {
      lastActivity = clock.now();
      parser.feed(decoder.decode(bytes as Uint8Array, { stream: true }));
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
    clock.clearTimeout(idleTimer);
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
