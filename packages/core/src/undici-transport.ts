import { isIP } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { Agent, type Dispatcher, interceptors } from 'undici';
import { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { type TextCodec, readAnswer } from './read-answer.js';
import type { Transport } from './transport.js';
import { type OpenAICompatibleOptions, type TransportConfig, requestBody, transportConfig } from './transport-config.js';
import { errorFromNetwork, redactHeaders } from './upstream-errors.js';

/** Node's codec: a StringDecoder costs less to make than a TextDecoder, and Buffer joins parts without copies. */
export const nodeCodec: TextCodec = {
  decoder: () => new StringDecoder('utf8') as { write(bytes: Uint8Array): string },
  text: (parts, size) =>
    parts.length === 1 ? (parts[0] as Buffer).toString('utf8') : Buffer.concat(parts, size).toString('utf8'),
};

/** What the undici transport adds to a config: its send and its pool's lifetime. */
export type TransportParts = Pick<Transport, 'send' | 'close' | 'destroy'>;

/**
 * The undici half of `openAICompatible` on Node: a keep-alive pool of
 * `connections` per origin, the connect timeout, and DNS answers cached.
 * Loaded by `openAICompatible` at its first send, so that importing core
 * loads neither undici nor any `node:` module.
 *
 * @param config - the checked options
 */
export function undiciParts(config: TransportConfig): TransportParts {
  const { origin, basePath, secrets, connectTimeoutMs, firstByteTimeoutMs, attemptTimeoutMs, jsonHeaders, streamHeaders } = config;
  const ownAgent = config.dispatcher
    ? undefined
    : new Agent({
        connections: config.connections,
        connect: { timeout: connectTimeoutMs },
        // Our own timers (on the call's clock) enforce these.
        headersTimeout: 0,
        bodyTimeout: 0,
      });
  // An IP literal (a local vLLM, the mock upstream) has nothing to resolve.
  const cacheDns = config.dnsCache && isIP(config.url.hostname.replace(/^\[|\]$/g, '')) === 0;
  const dispatcher: Dispatcher =
    config.dispatcher ?? (cacheDns ? (ownAgent as Agent).compose(interceptors.dns()) : (ownAgent as Agent));
  const path = `${basePath}/chat/completions`;
  let closing: Promise<void> | undefined;

  async function send(ctx: CompletionContext): Promise<void> {
    const { body, callerAskedUsage } = requestBody(ctx, config.includeUsage);
    const attempt = new Attempt(ctx, ctx.clock, firstByteTimeoutMs, attemptTimeoutMs);
    let response: Dispatcher.ResponseData;
    try {
      response = await dispatcher.request({
        origin,
        path,
        method: 'POST',
        headers: ctx.stream ? streamHeaders : jsonHeaders,
        body,
        signal: attempt.signal as unknown as AbortSignal,
      });
    } catch (error) {
      attempt.done();
      throw attempt.reason() ?? errorFromNetwork(error, connectTimeoutMs, secrets);
    }
    const answer = { status: response.statusCode, headers: flattenHeaders(response.headers, secrets), body: response.body };
    return readAnswer(ctx, attempt, answer, config, callerAskedUsage, nodeCodec);
  }

  return {
    send,
    close() {
      closing ??= ownAgent?.close() ?? Promise.resolve();
      return closing;
    },
    async destroy() {
      await ownAgent?.destroy();
    },
  };
}

/**
 * The transport `openAICompatible` gives on Node, loaded at once rather
 * than at the first send: for a program that wants undici explicitly
 * (an undici `dispatcher` of its own, a proxy agent).
 *
 * @param options - as `openAICompatible`'s, without `fetch`
 * @throws ValidationError naming the bad option
 * @example
 * ```ts
 * import { undiciTransport } from '@sluice/core/undici';
 * const llm = createPipeline({ transport: undiciTransport({ baseUrl, apiKey, connections: 200 }) });
 * ```
 */
export function undiciTransport(options: OpenAICompatibleOptions): Transport {
  const config = transportConfig(options, 'undiciTransport');
  return { name: config.name, origin: `${config.origin}${config.basePath}`, ...undiciParts(config) };
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
