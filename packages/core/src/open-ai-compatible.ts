import { ValidationError } from './errors.js';
import { fetchParts } from './fetch-transport.js';
import type { Transport } from './transport.js';
import { type OpenAICompatibleOptions, transportConfig } from './transport-config.js';
import { loadNodeModules, undiciParts } from './undici-transport.js';

export type { OpenAICompatibleOptions } from './transport-config.js';

/**
 * A transport for any OpenAI-compatible `POST /chat/completions` endpoint:
 * on Node over an undici keep-alive pool (undici is loaded when this is
 * called, never imported, so importing core loads neither undici nor any
 * `node:` module, and bundles for the web hold neither); on Bun,
 * Deno, workers and browsers, or when `fetch` is given, over `fetch`.
 *
 * - `connections` per origin (default 100: the original client's 100 per host; undici only);
 * - timeouts: `connectTimeoutMs` 10 s, `firstByteTimeoutMs` (to response
 *   headers) 60 s, `idleTimeoutMs` between stream events 60 s, and
 *   `attemptTimeoutMs` 60 s for a whole non-stream attempt or a stream's
 *   start. All but connect run on the call's clock. The idle limit counts
 *   complete SSE events: bytes that finish none (a drip, `:` keep-alive
 *   comments) do not reset it, and the time a consumer holds a chunk does
 *   not count against it;
 * - DNS answers cached (undici's dns interceptor) unless `dnsCache: false`;
 * - `fetch`: send with this fetch (a proxy's, a test's) instead of undici;
 *   `dispatcher`: send with this undici dispatcher. Over fetch, the connect
 *   limit is the runtime's own (the first-byte limit still bounds it);
 * - streams parsed with eventsource-parser; `stream_options.include_usage`
 *   is requested unless `includeUsage: false`, and the usage chunk is
 *   hidden from a caller who did not ask for it;
 * - every answer is checked: a caller gets a valid completion or chunk, or
 *   a typed error (MALFORMED_RESPONSE for one that is not; rules and
 *   sanitising in validate-response.ts); a usage with bad counts is dropped,
 *   so no NaN reaches a counter;
 * - `keepRawJson: true` keeps each answer's JSON text, when its check
 *   changed nothing, for `rawJson()` (a proxy forwards it instead of
 *   serialising the value again);
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
  const config = transportConfig(options, 'openAICompatible');
  const modules = config.fetch === undefined && (config.dispatcher !== undefined || onNode()) ? loadNodeModules() : null;
  if (config.dispatcher && !modules) throw new ValidationError('openAICompatible.dispatcher', 'needs undici, which this runtime cannot load');
  const parts = modules ? undiciParts(config, modules) : fetchParts(config);
  return { name: config.name, origin: `${config.origin}${config.basePath}`, honoursAbort: true, ...parts };
}

/** Whether this is Node itself (Bun and Deno say they are Node too, and have a fetch of their own). */
function onNode(): boolean {
  const global = globalThis as { process?: { versions?: { node?: unknown } }; Bun?: unknown; Deno?: unknown };
  return typeof global.process?.versions?.node === 'string' && global.Bun === undefined && global.Deno === undefined;
}
