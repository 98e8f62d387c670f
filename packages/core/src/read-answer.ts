import type { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { MalformedResponseError, ResponseTooLargeError } from './errors.js';
import { declaredBreak, readBody } from './read-body.js';
import { readEvents } from './read-events.js';
import type { TextCodec } from './text-codec.js';
import { maxErrorBody, type TransportConfig } from './transport-config.js';
import { errorFromUpstream } from './upstream-errors.js';
import { keepRawJson } from './raw-json.js';
import { editCount, isErrorBody, parseJson, toCompletion } from './validate-response.js';

/** An upstream's answer once its headers are in, whatever the HTTP client. */
export interface Answer {
  status: number;
  /** Lowercased, flattened and redacted. */
  headers: Record<string, string>;
  body: AsyncIterable<Uint8Array>;
  /**
   * The whole body as UTF-8 text, by the HTTP client's own (faster) path.
   * Used only when the answer declares a length within the limit and no
   * encoding: the client then cannot read more than that length, so the
   * limit holds without counting bytes.
   */
  text?: () => Promise<string>;
}

/**
 * Reads an answer into the call: an error status becomes its typed error;
 * a stream sets `ctx.chunks`; a JSON body is checked and sets
 * `ctx.response` and `ctx.usage`. The same for every transport, so they
 * differ only in how they send.
 *
 * @param ctx - the call
 * @param attempt - the attempt whose timer and abort govern the body
 * @param answer - status, headers and body
 * @param config - the transport's limits
 * @param callerAskedUsage - whether to keep the usage-only chunk
 * @param codec - how bytes become text here
 * @throws the upstream's typed error; MalformedResponseError; ResponseTooLargeError; the attempt's TimeoutError or AbortError
 */
export function readAnswer(
  ctx: CompletionContext,
  attempt: Attempt,
  answer: Answer,
  config: TransportConfig,
  callerAskedUsage: boolean,
  codec: TextCodec,
): Promise<void> {
  // Not async: a JSON answer of declared length (nearly every one) is read
  // in one `then` on the client's own read, where an async function and
  // the one it awaited cost two frames and their promises on every call.
  try {
    attempt.headersReceived();
    const { status, headers, body } = answer;
    const { secrets, maxResponseBytes } = config;
    ctx.responseHeaders = headers;

    if (status < 200 || status >= 300) return readError(ctx, attempt, answer, config, codec);
    const contentType = headers['content-type'] ?? '';
    if (ctx.stream && contentType.includes('text/event-stream')) {
      // The stream runs past the attempt timeout; the idle limit guards it.
      attempt.streaming(config.idleTimeoutMs);
      ctx.chunks = readEvents(ctx, body, attempt, {
        hideUsage: !callerAskedUsage,
        headers,
        secrets,
        maxEventSize: maxResponseBytes,
        decoder: codec.decoder(),
        keepRawJson: config.keepRawJson,
      });
      return read;
    }
    const declared = Number(headers['content-length']);
    if (declared > maxResponseBytes) {
      const error = new ResponseTooLargeError(`the response body (${declared} bytes) exceeds maxResponseBytes (${maxResponseBytes})`, {
        status,
        headers,
      });
      attempt.abort(error);
      attempt.done();
      return Promise.reject(error);
    }
    // The client's own read of a declared length within the limit (the common case), else a counted read.
    const readText = answer.text;
    const declaredRead = readText !== undefined && declared >= 0 && headers['content-encoding'] === undefined;
    const text = declaredRead
      ? readText()
      : readBody(body, attempt, { limit: maxResponseBytes, atLimit: 'fail', headers, secrets, codec });
    return text.then(
      (json) => {
        attempt.done();
        takeJson(ctx, json, status, headers, contentType, config);
      },
      (error: unknown) => {
        const failure = declaredRead ? declaredBreak(error, attempt, headers, secrets) : error;
        attempt.done();
        throw failure;
      },
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** What `readAnswer` resolves with once a stream is handed over. */
const read: Promise<void> = Promise.resolve();

/** An error status: its body (cut at the error limit) read into the upstream's typed error. */
async function readError(ctx: CompletionContext, attempt: Attempt, answer: Answer, config: TransportConfig, codec: TextCodec): Promise<never> {
  const { status, headers, body } = answer;
  const { secrets } = config;
  let text = '';
  try {
    text = await readBody(body, attempt, { limit: maxErrorBody, atLimit: 'truncate', headers, secrets, codec });
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

/** A JSON body, read whole: checked into `ctx.response` and `ctx.usage`, or the error it is. */
function takeJson(
  ctx: CompletionContext,
  text: string,
  status: number,
  headers: Record<string, string>,
  contentType: string,
  config: TransportConfig,
): void {
  const { secrets } = config;
  const json = parseJson(text);
  if (isErrorBody(json)) throw errorFromUpstream({ status: undefined, body: json, headers, now: ctx.clock.now(), secrets });
  if (json === undefined) {
    const encoding = headers['content-encoding'];
    const what = contentType.includes('html')
      ? 'an HTML page'
      : encoding !== undefined && encoding !== 'identity'
        ? `a body encoded as ${encoding}, which this transport does not decode (it asks for identity)`
        : 'a body that is not JSON';
    throw new MalformedResponseError(`upstream answered ${status} with ${what}`, { status, headers });
  }
  if (ctx.stream) throw new MalformedResponseError('upstream answered a stream request without an event stream', { status, headers });
  const edits = editCount();
  const completion = toCompletion(json, { headers, secrets, status });
  if (config.keepRawJson && editCount() === edits) keepRawJson(completion, text);
  ctx.response = completion;
  ctx.usage = completion.usage ?? undefined;
}
