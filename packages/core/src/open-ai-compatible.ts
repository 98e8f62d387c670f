import { isIP } from 'node:net';
import { Agent, type Dispatcher, interceptors } from 'undici';
import { z } from 'zod';
import { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { MalformedResponseError, ValidationError } from './errors.js';
import type { Transport } from './transport.js';
import { readBody } from './read-body.js';
import { readEvents } from './read-events.js';
import { errorFromNetwork, errorFromUpstream, redactHeaders } from './upstream-errors.js';
import { parseOptions } from './validate.js';
import { isErrorBody, parseJson, toCompletion } from './validate-response.js';

const optionsSchema = z.strictObject({
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKey: z.string().min(1, 'is empty: set it, or pass apiKey: null for a server that needs no key').nullable().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  connections: z.number().int().positive().optional(),
  connectTimeoutMs: z.number().positive().optional(),
  firstByteTimeoutMs: z.number().positive().optional(),
  idleTimeoutMs: z.number().positive().optional(),
  attemptTimeoutMs: z.number().positive().optional(),
  maxResponseBytes: z.number().int().positive().optional(),
  includeUsage: z.boolean().optional(),
  dnsCache: z.boolean().optional(),
  name: z.string().min(1).optional(),
  dispatcher: z.custom<Dispatcher>((value) => typeof (value as Dispatcher | undefined)?.dispatch === 'function').optional(),
});

const timeouts =
  'set connectTimeoutMs, firstByteTimeoutMs, idleTimeoutMs or attemptTimeoutMs here, or timeoutMs on the call for its whole deadline';

/** Keys people reach for that are not typos of an option. */
const hints: Readonly<Record<string, string>> = {
  timeout: timeouts,
  timeoutMs: timeouts,
  maxRetries: 'retries belong to the retry() middleware (@sluice/retry)',
  retries: 'retries belong to the retry() middleware (@sluice/retry)',
  fetch: 'pass an undici dispatcher to dispatcher',
};

/** Request headers whose values are credentials, masked like the API key. */
const credentialHeaders = new Set(['authorization', 'api-key', 'x-api-key', 'proxy-authorization']);

/** Options of {@link openAICompatible}. */
export type OpenAICompatibleOptions = z.input<typeof optionsSchema>;

/** Largest error body read (the rest is dropped), so a misbehaving upstream cannot fill memory. */
const maxErrorBody = 64 * 1024;
/** Default largest success body, and largest single SSE event. */
const defaultMaxResponseBytes = 32 * 1024 * 1024;

/**
 * A transport for any OpenAI-compatible `POST /chat/completions` endpoint,
 * over an undici keep-alive pool.
 *
 * - `connections` per origin (default 100: the original client's 100 per host);
 * - timeouts: `connectTimeoutMs` 10 s, `firstByteTimeoutMs` (to response
 *   headers) 60 s, `idleTimeoutMs` between stream events 60 s, and
 *   `attemptTimeoutMs` 60 s for a whole non-stream attempt or a stream's
 *   start. All but connect run on the call's clock. The idle limit counts
 *   complete SSE events: bytes that finish none (a drip, `:` keep-alive
 *   comments) do not reset it, and the time a consumer holds a chunk does
 *   not count against it;
 * - DNS answers cached (undici's dns interceptor) unless `dnsCache: false`;
 * - streams parsed with eventsource-parser; `stream_options.include_usage`
 *   is requested unless `includeUsage: false`, and the usage chunk is
 *   hidden from a caller who did not ask for it;
 * - every answer is checked: a caller gets a valid completion or chunk, or
 *   a typed error (MALFORMED_RESPONSE for one that is not; rules and
 *   sanitising in validate-response.ts); a usage with bad counts is dropped,
 *   so no NaN reaches a counter;
 * - `maxResponseBytes` (default 32 MiB) caps a JSON body and each SSE
 *   event (in characters); past it, MALFORMED_RESPONSE. Error bodies are
 *   read up to 64 KiB;
 * - the API key goes only into the Authorization header, and is masked
 *   in every error (message, provider code, headers) and in
 *   `ctx.responseHeaders`, as are the values of credential `headers`
 *   (`api-key`, `x-api-key`, `authorization`).
 *
 * `apiKey` is the key; `apiKey: null` (or leaving it out) says the server
 * needs none (a local Ollama or vLLM). `apiKey: undefined` written out, as
 * `process.env.KEY` gives when the variable is unset, is a ValidationError:
 * a missing key should fail here, not as a 401 on the first call.
 * Unknown options are rejected with the nearest known one (`baseURL` →
 * `baseUrl`).
 *
 * @param options - `baseUrl` (with its `/v1`), `apiKey`, extra `headers`, pool, timeout and size settings
 * @throws ValidationError naming the bad option
 * @example
 * ```ts
 * const transport = openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey: process.env.DEEPSEEK_API_KEY });
 * const llm = createPipeline({ transport });
 * ```
 */
export function openAICompatible(options: OpenAICompatibleOptions): Transport {
  if (typeof options === 'object' && options !== null && 'apiKey' in options && options.apiKey === undefined) {
    throw new ValidationError(
      'openAICompatible.apiKey',
      'is undefined (an unset environment variable?): set it, or pass apiKey: null for a server that needs no key',
    );
  }
  const config = parseOptions(optionsSchema, options, 'openAICompatible', hints);
  const url = new URL(config.baseUrl);
  const basePath = url.pathname.replace(/\/+$/, '');
  const origin = `${url.protocol}//${url.host}`;
  const secrets = [
    ...(config.apiKey ? [config.apiKey] : []),
    ...Object.entries(config.headers ?? {})
      .filter(([name, value]) => credentialHeaders.has(name.toLowerCase()) && value !== '')
      .map(([, value]) => value.replace(/^Bearer\s+/i, '')),
  ];
  const connectTimeoutMs = config.connectTimeoutMs ?? 10_000;
  const firstByteTimeoutMs = config.firstByteTimeoutMs ?? 60_000;
  const idleTimeoutMs = config.idleTimeoutMs ?? 60_000;
  const attemptTimeoutMs = config.attemptTimeoutMs ?? 60_000;
  const includeUsage = config.includeUsage ?? true;
  const maxResponseBytes = config.maxResponseBytes ?? defaultMaxResponseBytes;
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
    const headers = flattenHeaders(response.headers, secrets);
    ctx.responseHeaders = headers;
    const status = response.statusCode;

    if (status < 200 || status >= 300) {
      let text = '';
      try {
        text = await readBody(response.body, attempt, { limit: maxErrorBody, atLimit: 'truncate', headers, secrets });
      } catch {
        // A timeout or abort stands; a body that broke does not hide the
        // status, which alone decides (a 401 cut short must not be retried).
        const reason = attempt.reason();
        if (reason) throw reason;
      } finally {
        attempt.done();
      }
      throw errorFromUpstream({ status, body: parseJson(text) ?? text, headers, now: ctx.clock.now(), secrets });
    }
    const contentType = headers['content-type'] ?? '';
    if (ctx.stream && contentType.includes('text/event-stream')) {
      // The stream runs past the attempt timeout; the idle limit guards it.
      attempt.streaming(idleTimeoutMs);
      ctx.chunks = readEvents(ctx, response.body, attempt, {
        hideUsage: !callerAskedUsage,
        headers,
        secrets,
        maxEventSize: maxResponseBytes,
      });
      return;
    }
    const declared = Number(headers['content-length']);
    if (declared > maxResponseBytes) {
      const error = new MalformedResponseError(`the response body (${declared} bytes) exceeds maxResponseBytes (${maxResponseBytes})`, {
        status,
        headers,
      });
      attempt.abort(error);
      attempt.done();
      throw error;
    }
    let text: string;
    try {
      text = await readBody(response.body, attempt, { limit: maxResponseBytes, atLimit: 'fail', headers, secrets });
    } finally {
      attempt.done();
    }
    const json = parseJson(text);
    if (isErrorBody(json)) throw errorFromUpstream({ status: undefined, body: json, headers, now: ctx.clock.now(), secrets });
    if (json === undefined) {
      const what = contentType.includes('html') ? 'an HTML page' : 'a body that is not JSON';
      throw new MalformedResponseError(`upstream answered ${status} with ${what}`, { status, headers });
    }
    if (ctx.stream) throw new MalformedResponseError('upstream answered a stream request without an event stream', { status, headers });
    const completion = toCompletion(json, { headers, secrets, status });
    ctx.response = completion;
    ctx.usage = completion.usage ?? undefined;
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

/** Response headers as one lowercased string each, with any echoed secret masked. */
function flattenHeaders(headers: Dispatcher.ResponseData['headers'], secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  let suspect = false;
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const flat = Array.isArray(value) ? value.join(', ') : value;
    out[name.toLowerCase()] = flat;
    // Checked in the same pass: this runs on every response.
    for (let i = 0; !suspect && i < secrets.length; i++) suspect = flat.includes(secrets[i] as string) || flat.includes('Bearer');
  }
  return suspect ? redactHeaders(out, secrets) : out;
}
