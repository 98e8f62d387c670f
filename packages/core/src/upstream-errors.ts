import {
  AuthError,
  BadRequestError,
  ClosedError,
  ConnectionError,
  ContextLengthError,
  RateLimitError,
  ServerError,
  StatusError,
  TimeoutError,
  UpstreamError,
  type UpstreamErrorOptions,
} from './errors.js';

/** Replaces every secret (the API key) in `text`; errors never carry one. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length >= 4) out = out.split(secret).join('[redacted]');
  // A provider echoing a key in its own masked form is harmless; a bearer
  // token echoed whole (a misconfigured relay) is not.
  return out.replace(/Bearer\s+[A-Za-z0-9._~+/=-]{8,}/g, 'Bearer [redacted]');
}

/**
 * At most `max` characters of `text`, secrets redacted first: truncating
 * first could cut a key in two and leave its prefix for redaction to miss.
 *
 * @param text - what the upstream sent
 * @param max - the longest result, not counting the ellipsis
 * @param secrets - the API keys to mask
 */
export function excerpt(text: string, max: number, secrets: readonly string[]): string {
  const safe = redact(text, secrets);
  return safe.length > max ? `${safe.slice(0, max)}…` : safe;
}

/**
 * Response headers with every secret masked in their values, as a new
 * object only when one needed masking. An upstream (a relay) that echoes
 * the key in a header must not put it in `ctx.responseHeaders` or an error.
 *
 * @param headers - names lowercased, one string each
 * @param secrets - the API keys to mask
 */
export function redactHeaders(headers: Record<string, string>, secrets: readonly string[]): Record<string, string> {
  let out: Record<string, string> | undefined;
  for (const name in headers) {
    const value = headers[name] as string;
    // This runs on every response: plain loops, and redact() only on a hit.
    let hit = value.includes('Bearer');
    for (let i = 0; !hit && i < secrets.length; i++) hit = value.includes(secrets[i] as string);
    if (!hit) continue;
    out ??= { ...headers };
    out[name] = redact(value, secrets);
  }
  return out ?? headers;
}

/**
 * Milliseconds to wait from `retry-after-ms` (milliseconds), or
 * `retry-after` (seconds, or an HTTP date), as openai-node reads them.
 */
export function parseRetryAfter(headers: Record<string, string>, now: number): number | undefined {
  const ms = headers['retry-after-ms'];
  if (ms !== undefined && ms.trim() !== '') {
    const value = Number(ms);
    if (Number.isFinite(value) && value >= 0) return value;
  }
  const after = headers['retry-after'];
  if (after === undefined || after.trim() === '') return undefined;
  const seconds = Number(after);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const date = Date.parse(after);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

interface ProviderError {
  message?: unknown;
  type?: unknown;
  code?: unknown;
  param?: unknown;
  status?: unknown;
}

/** An error message longer than this is cut (after redaction): errors end up in logs. */
const maxMessageLength = 1000;
const maxCodeLength = 100;

const contextLength = /context[_ ]length|maximum context|context window|too many tokens|prompt is too long/i;

/**
 * Maps an upstream answer (a status, a parsed error body, headers) to the
 * typed error for it. Used for HTTP errors, for a 200 whose body is an
 * error object, and for an SSE `error` event mid-stream.
 */
export function errorFromUpstream(input: {
  status: number | undefined;
  body: unknown;
  headers: Record<string, string>;
  now: number;
  secrets: readonly string[];
}): UpstreamError {
  const { headers, secrets } = input;
  const detail = providerError(input.body);
  const code = firstString(detail?.code, detail?.type);
  const providerCode = code === undefined ? undefined : excerpt(code, maxCodeLength, secrets);
  const status = input.status ?? statusFromProvider(detail);
  const said = firstString(detail?.message);
  const raw = said !== undefined ? excerpt(said, maxMessageLength, secrets) : typeof input.body === 'string' ? summarise(input.body, secrets) : undefined;
  const message = redact(`${status ?? 'upstream'} ${raw ?? 'error'}`, secrets);
  const shouldRetry = headers['x-should-retry'];
  const options: UpstreamErrorOptions = {
    status,
    headers: redactHeaders(headers, secrets),
    providerCode,
    retryAfterMs: parseRetryAfter(headers, input.now),
    ...(shouldRetry === 'true' ? { retryable: true } : shouldRetry === 'false' ? { retryable: false } : {}),
  };
  const kind = `${providerCode ?? ''}`.toLowerCase();
  if (status === 400 || (status === undefined && kind.includes('invalid_request'))) {
    return kind === 'context_length_exceeded' || contextLength.test(raw ?? '')
      ? new ContextLengthError(message, options)
      : new BadRequestError(message, options);
  }
  if (status === 401 || status === 403) return new AuthError(message, options);
  if (status !== undefined && status >= 300 && status < 400) {
    // Not the provider failing, and the same address redirects again: neither retried nor counted
    // by a breaker. Not followed either: a redirect would carry the API key to another address.
    const location = headers.location;
    const where = location === undefined ? '' : ` to ${excerpt(location, maxMessageLength, secrets)}`;
    return new StatusError(status, redact(`${status} redirect${where}: sluice does not follow redirects; point baseUrl at the new address`, secrets), options);
  }
  if (status === 429 || kind.includes('rate_limit')) return new RateLimitError(message, options);
  if (status !== undefined && status >= 500) return new ServerError(message, options);
  if (status !== undefined && status >= 400) return new StatusError(status, message, options);
  // A 200 carrying an error object, or an SSE error event: the provider failed mid-answer.
  return new ServerError(message, options);
}

function providerError(body: unknown): ProviderError | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const error = (body as { error?: unknown }).error;
  if (typeof error === 'object' && error !== null) return error as ProviderError;
  if (typeof error === 'string') return { message: error };
  return body as ProviderError;
}

function statusFromProvider(detail: ProviderError | undefined): number | undefined {
  for (const value of [detail?.status, detail?.code]) {
    const n = typeof value === 'string' ? Number(value) : value;
    if (typeof n === 'number' && Number.isInteger(n) && n >= 400 && n < 600) return n;
  }
  return undefined;
}

function firstString(...values: unknown[]): string | undefined {
  for (const value of values) if (typeof value === 'string' && value !== '') return value;
  return undefined;
}

/** The start of a non-JSON body (an HTML error page, say), without markup or secrets. */
function summarise(body: string, secrets: readonly string[]): string {
  const title = /<title>([^<]*)<\/title>/i.exec(body)?.[1];
  return excerpt((title ?? body).replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim(), 200, secrets);
}

const connectionCodes = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT',
  'UND_ERR_SOCKET', 'UND_ERR_RESPONSE_STATUS_CODE',
]);

/** undici's codes for a dispatcher that was closed or destroyed: ours, not the upstream's. */
const closedCodes = new Set(['UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);

/**
 * Maps an error thrown by undici (or the socket under it) to a typed error.
 * A closed or destroyed dispatcher (a transport shared with a pipeline that
 * was closed, a dispatcher the caller destroyed) is `CLOSED`: final, not an
 * upstream fault, so no retry waits out its backoff against it and no
 * breaker counts it as an outage.
 */
export function errorFromNetwork(error: unknown, connectTimeoutMs: number, secrets: readonly string[]): UpstreamError | ClosedError {
  const code = (error as { code?: unknown } | null)?.code;
  const causeCode = (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  const message = redact(error instanceof Error ? error.message : String(error), secrets);
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new TimeoutError('connect', connectTimeoutMs, { cause: error });
  const closed = closedCodes.has(String(code)) ? code : closedCodes.has(String(causeCode)) ? causeCode : undefined;
  if (closed !== undefined) {
    return new ClosedError(
      `the transport is closed (${String(closed)}): a pipeline using it was closed, or its dispatcher was; give each pipeline its own transport, or close the pipelines that share one together`,
      { cause: error },
    );
  }
  if (connectionCodes.has(String(code)) || connectionCodes.has(String(causeCode))) {
    return new ConnectionError(`connection failed (${String(code)}): ${message}`, { cause: error });
  }
  return new ConnectionError(`request failed: ${message}`, { cause: error });
}
