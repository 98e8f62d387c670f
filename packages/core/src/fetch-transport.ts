import { Attempt, DeadlineQueues } from './attempt.js';
import { raceAbort } from './call.js';
import type { CompletionContext } from './context.js';
import { type Answer, readAnswer } from './read-answer.js';
import { webCodec } from './text-codec.js';
import type { Transport } from './transport.js';
import { ValidationError } from './errors.js';
import { type OpenAICompatibleOptions, type TransportConfig, requestBody as requestBodyFor, transportConfig } from './transport-config.js';
import { errorFromNetwork, redactHeaders } from './upstream-errors.js';

/**
 * The fetch half of `openAICompatible`, for runtimes other than Node (Bun,
 * Deno, workers, browsers) or when `fetch` is given: the same request,
 * timeouts (first byte, attempt, idle between events; the connect limit is
 * the runtime's own), abort, size limits, SSE parsing and checks as the
 * undici transport, over `fetch` (the runtime's own pool and keep-alive).
 *
 * @param config - the checked options
 */
export function fetchParts(config: TransportConfig): Pick<Transport, 'send'> {
  const { secrets, connectTimeoutMs, firstByteTimeoutMs, attemptTimeoutMs, jsonHeaders, streamHeaders } = config;
  const url = `${config.origin}${config.basePath}/chat/completions${config.query}`;
  const deadlines = new DeadlineQueues();

  async function send(ctx: CompletionContext): Promise<void> {
    const fetch = config.fetch ?? globalThis.fetch;
    const { body, callerAskedUsage } = requestBodyFor(ctx, config.includeUsage);
    const attempt = new Attempt(ctx, deadlines.of(ctx.clock), firstByteTimeoutMs, attemptTimeoutMs);
    let response: Response;
    try {
      // A `fetch` given in the options (a mocking library, a wrapper) may not hear its signal: the wait still
      // ends at the attempt's limits, and an answer that comes after has its body cancelled, its connection let go.
      response = await raceAbort(
        attempt.signal,
        fetch(url, {
          method: 'POST',
          headers: ctx.stream ? streamHeaders : jsonHeaders,
          body,
          signal: attempt.signal.toSignal(),
        }),
        cancelBody,
      );
    } catch (error) {
      attempt.done();
      throw attempt.reason() ?? errorFromNetwork(error, connectTimeoutMs, secrets);
    }
    const answer: Answer = { status: response.status, headers: flattenHeaders(response.headers, secrets), body: bytesOf(response.body, attempt) };
    return readAnswer(ctx, attempt, answer, config, callerAskedUsage, webCodec);
  }
  return { send };
}

/**
 * A body's bytes as an async iterable; stopping early cancels the body, so
 * the connection is not left half-read.
 *
 * The attempt's abort (its deadline, the idle limit, the caller) cancels
 * the reader itself, which settles a read in progress, and the read then
 * fails with the attempt's reason. The fetch's own signal is not enough:
 * Node 20's fetch left a read pending forever, past every deadline, on a
 * close-delimited body whose `content-encoding` (gzip, br) did not decode, and
 * the abort never reached it.
 */
async function* bytesOf(body: ReadableStream<Uint8Array> | null, attempt: Attempt): AsyncGenerator<Uint8Array, void, undefined> {
  if (!body) return;
  const reader = body.getReader();
  let finished = false;
  const cancel = () => void reader.cancel(attempt.reason()).catch(ignore);
  attempt.signal.addEventListener('abort', cancel);
  try {
    // Aborted already, it hears no abort: the first read would not be settled by one.
    if (attempt.reason()) throw attempt.reason();
    for (;;) {
      const { done, value } = await reader.read();
      const reason = attempt.reason();
      if (reason) throw reason;
      if (done) {
        finished = true;
        return;
      }
      yield value;
    }
  } finally {
    attempt.signal.removeEventListener('abort', cancel);
    if (!finished) reader.cancel().catch(ignore);
  }
}

const ignore = () => {};
const cancelBody = (late: Response) => void late.body?.cancel().catch(ignore);


/** Response headers as one lowercased string each, with any echoed secret masked. */
function flattenHeaders(headers: Headers, secrets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  let suspect = false;
  headers.forEach((value, name) => {
    out[name] = value;
    for (let i = 0; !suspect && i < secrets.length; i++) suspect = value.includes(secrets[i] as string) || value.includes('Bearer');
  });
  return suspect ? redactHeaders(out, secrets) : out;
}

/**
 * `openAICompatible` over `fetch` on every runtime, Node included: for a
 * Node program that wants the runtime's fetch (a global dispatcher, a
 * mocking library), or to run the same transport everywhere.
 *
 * @param options - as `openAICompatible`'s; `fetch` defaults to the global one, looked up at each send
 * @throws ValidationError naming the bad option
 * @example
 * ```ts
 * const llm = createPipeline({ transport: fetchTransport({ baseUrl: 'https://api.deepseek.com/v1', apiKey }) });
 * ```
 */
export function fetchTransport(options: OpenAICompatibleOptions): Transport {
  const config = transportConfig(options, 'fetchTransport');
  if (config.dispatcher) throw new ValidationError('fetchTransport.dispatcher', 'is undici-only: use openAICompatible or undiciTransport');
  return { name: config.name, origin: `${config.origin}${config.basePath}`, honoursAbort: true, ...fetchParts(config) };
}
