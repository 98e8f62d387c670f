import type { Dispatcher } from 'undici';
import * as z from 'zod/mini';
import type { CompletionContext } from './context.js';
import { ValidationError } from './errors.js';
import type { FetchFunction } from './to-fetch.js';
import { parseOptions } from './validate.js';

const optionsSchema = z.strictObject({
  baseUrl: z.url({ protocol: /^https?$/ }),
  apiKey: z.nullish(z.string().check(z.minLength(1, 'is empty: set it, or pass apiKey: null for a server that needs no key'))),
  headers: z.optional(z.record(z.string(), z.string())),
  connections: z.optional(z.number().check(z.int(), z.positive())),
  connectTimeoutMs: z.optional(z.number().check(z.positive())),
  firstByteTimeoutMs: z.optional(z.number().check(z.positive())),
  idleTimeoutMs: z.optional(z.number().check(z.positive())),
  attemptTimeoutMs: z.optional(z.number().check(z.positive())),
  maxResponseBytes: z.optional(z.number().check(z.int(), z.positive())),
  includeUsage: z.optional(z.boolean()),
  keepRawJson: z.optional(z.boolean()),
  dnsCache: z.optional(z.boolean()),
  name: z.optional(z.string().check(z.minLength(1))),
  dispatcher: z.optional(z.custom<Dispatcher>((value) => typeof (value as Dispatcher | undefined)?.dispatch === 'function')),
  fetch: z.optional(z.custom<FetchFunction>((value) => typeof value === 'function', 'must be a fetch function')),
});

const timeouts =
  'set connectTimeoutMs, firstByteTimeoutMs, idleTimeoutMs or attemptTimeoutMs here, or timeoutMs on the call for its whole deadline';

/** Keys people reach for that are not typos of an option. */
const hints: Readonly<Record<string, string>> = {
  timeout: timeouts,
  timeoutMs: timeouts,
  maxRetries: 'retries belong to the retry() middleware (@sluice/retry)',
  retries: 'retries belong to the retry() middleware (@sluice/retry)',
};

/** Request headers whose values are credentials, masked like the API key. */
const credentialHeaders = new Set(['authorization', 'api-key', 'x-api-key', 'proxy-authorization']);

/** Options of `openAICompatible` (and of `fetchTransport` and `undiciTransport`). */
export type OpenAICompatibleOptions = z.input<typeof optionsSchema>;

/** Largest error body read (the rest is dropped), so a misbehaving upstream cannot fill memory. */
export const maxErrorBody = 64 * 1024;
/** Default largest success body, and largest single SSE event. */
const defaultMaxResponseBytes = 32 * 1024 * 1024;

/** A transport's options, checked and with every default resolved. */
export interface TransportConfig {
  name: string;
  url: URL;
  origin: string;
  basePath: string;
  /**
   * The base URL's query, `?` included, or `''`: sent on every request
   * (Azure OpenAI's `?api-version=…`); dropped before, so such a base URL failed.
   */
  query: string;
  apiKey: string | null | undefined;
  /** The API key and credential header values, masked in every error. */
  secrets: readonly string[];
  connections: number;
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  idleTimeoutMs: number;
  attemptTimeoutMs: number;
  includeUsage: boolean;
  /** Keep each answer's JSON text for `rawJson()`. */
  keepRawJson: boolean;
  maxResponseBytes: number;
  dnsCache: boolean;
  dispatcher: Dispatcher | undefined;
  fetch: FetchFunction | undefined;
  jsonHeaders: Record<string, string>;
  streamHeaders: Record<string, string>;
}

/**
 * Checks a transport's options and resolves their defaults (see
 * `openAICompatible` for what each means).
 *
 * @param options - what the factory was given
 * @param factory - the factory's name, for error paths
 * @throws ValidationError naming the bad option
 */
export function transportConfig(options: OpenAICompatibleOptions, factory: string): TransportConfig {
  if (typeof options === 'object' && options !== null && 'apiKey' in options && options.apiKey === undefined) {
    throw new ValidationError(
      `${factory}.apiKey`,
      'is undefined (an unset environment variable?): set it, or pass apiKey: null for a server that needs no key',
    );
  }
  const config = parseOptions(optionsSchema, options, factory, hints);
  if (config.dispatcher && config.fetch) throw new ValidationError(`${factory}.fetch`, 'cannot be used with dispatcher: pick one');
  const url = new URL(config.baseUrl);
  if (url.username !== '' || url.password !== '') {
    // Dropped before, without a word (undici sends no userinfo), and a URL is what ends up in logs.
    throw new ValidationError(`${factory}.baseUrl`, 'must not carry credentials (user:password@): pass apiKey, or an authorization header in headers');
  }
  if (/\/chat\/completions\/*$/.test(url.pathname)) {
    // The whole endpoint pasted in: every request went to …/chat/completions/chat/completions, a 404.
    throw new ValidationError(
      `${factory}.baseUrl`,
      `is the chat completions endpoint itself: give its base (${url.origin}${url.pathname.replace(/\/chat\/completions\/*$/, '')}); the transport adds /chat/completions`,
    );
  }
  const secrets = [
    ...(config.apiKey ? [config.apiKey] : []),
    ...Object.entries(config.headers ?? {})
      .filter(([name, value]) => credentialHeaders.has(name.toLowerCase()) && value !== '')
      .map(([, value]) => value.replace(/^Bearer\s+/i, '')),
  ];
  const baseHeaders: Record<string, string> = { 'content-type': 'application/json', ...config.headers };
  if (config.apiKey) baseHeaders.authorization = `Bearer ${config.apiKey}`;
  return {
    name: config.name ?? 'openai-compatible',
    url,
    origin: `${url.protocol}//${url.host}`,
    basePath: url.pathname.replace(/\/+$/, ''),
    query: url.search,
    apiKey: config.apiKey,
    secrets,
    connections: config.connections ?? 100,
    connectTimeoutMs: config.connectTimeoutMs ?? 10_000,
    firstByteTimeoutMs: config.firstByteTimeoutMs ?? 60_000,
    idleTimeoutMs: config.idleTimeoutMs ?? 60_000,
    attemptTimeoutMs: config.attemptTimeoutMs ?? 60_000,
    includeUsage: config.includeUsage ?? true,
    keepRawJson: config.keepRawJson ?? false,
    maxResponseBytes: config.maxResponseBytes ?? defaultMaxResponseBytes,
    dnsCache: config.dnsCache !== false,
    dispatcher: config.dispatcher,
    fetch: config.fetch,
    jsonHeaders: { ...baseHeaders, accept: 'application/json' },
    streamHeaders: { ...baseHeaders, accept: 'text/event-stream' },
  };
}

/** The JSON body sent for a call: `stream` set, and usage asked for on streams unless turned off. */
export function requestBody(ctx: CompletionContext, includeUsage: boolean): { body: string; callerAskedUsage: boolean } {
  const { request } = ctx;
  const callerAskedUsage = request.stream_options?.include_usage === true;
  const addUsage = ctx.stream && includeUsage && !callerAskedUsage;
  // The common cases append what is missing to the serialised request: a
  // copy of the request with a field added costs more than serialising it.
  const json = JSON.stringify(request);
  if (json.length > 2 && json.endsWith('}')) {
    if (!ctx.stream) {
      if (request.stream === false) return { body: json, callerAskedUsage };
      if (request.stream === undefined) return { body: `${json.slice(0, -1)},"stream":false}`, callerAskedUsage };
    } else if (request.stream === true) {
      if (!addUsage) return { body: json, callerAskedUsage };
      if (request.stream_options === undefined) {
        return { body: `${json.slice(0, -1)},"stream_options":{"include_usage":true}}`, callerAskedUsage };
      }
    }
  }
  const body = ctx.stream
    ? { ...request, stream: true, ...(addUsage ? { stream_options: { ...request.stream_options, include_usage: true } } : {}) }
    : { ...request, stream: false };
  return { body: JSON.stringify(body), callerAskedUsage };
}
