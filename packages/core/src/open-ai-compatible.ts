import { isIP } from 'node:net';
import { Agent, type Dispatcher, interceptors } from 'undici';
import { z } from 'zod';
import { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { MalformedResponseError, StreamCutError } from './errors.js';
import type { Transport } from './pipeline.js';
import { errorFromNetwork, errorFromUpstream, redact } from './upstream-errors.js';
import { readEvents } from './read-events.js';
import { parseOptions } from './validate.js';
import { isCompletion, isErrorBody, parseJson } from './validate-response.js';

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
