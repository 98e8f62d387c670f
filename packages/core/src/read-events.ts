import { createParser, type EventSourceMessage, type ParseError } from 'eventsource-parser';
import type { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { AbortError, MalformedResponseError, ResponseTooLargeError, SluiceError, StreamCutError } from './errors.js';
import type { ChatCompletionChunk } from './schemas.js';
import { errorFromUpstream, excerpt, redact } from './upstream-errors.js';
import { isErrorBody, parseJson, toChunk } from './validate-response.js';

/** What {@link readEvents} needs besides the body. */
export interface ReadEventsOptions {
  /** Drop the usage-only chunk (the caller did not ask for usage; the transport did). */
  hideUsage: boolean;
  /** Response headers, for errors (already redacted). */
  headers: Record<string, string>;
  secrets: readonly string[];
  /** Largest single event, in characters once decoded. */
  maxEventSize: number;
  /** Decodes the bytes, keeping a character split across reads whole. */
  decoder: { write(bytes: Uint8Array): string };
}

/**
 * Reads an SSE body into checked chunks (see validate-response.ts).
 *
 * The attempt's idle timer counts events, not bytes: it restarts on each
 * complete event or `:` comment line (the keep-alive that OpenRouter and
 * others send while a model thinks), and stands still while the consumer
 * holds a chunk (a slow consumer is not a silent upstream; the call's
 * deadline still runs). Bytes that do not finish a line leave it running,
 * so an upstream that trickles a byte a second still hits its idle limit.
 *
 * Whatever ends the stream early (an error event, a malformed or oversized
 * event, a timeout, the consumer's `break`) aborts the attempt, which
 * destroys the socket instead of returning it half-read to the pool, and
 * clears the attempt's timer.
 *
 * @param ctx - the call; its `usage` is set from the usage chunk
 * @param body - the response body, status 200, `text/event-stream`
 * @param attempt - the attempt whose timer and abort govern the body
 * @param options - see {@link ReadEventsOptions}
 * @throws the upstream's typed error for an SSE error event; MalformedResponseError
 *   for a malformed event, ResponseTooLargeError for an oversized one; StreamCutError when the stream ends
 *   without `[DONE]` or breaks; the attempt's TimeoutError or AbortError
 */
export async function* readEvents(
  ctx: CompletionContext,
  body: AsyncIterable<Uint8Array>,
  attempt: Attempt,
  options: ReadEventsOptions,
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const { clock } = ctx;
  const { headers, secrets } = options;
  const events: EventSourceMessage[] = [];
  let comments = 0;
  let overflow: ParseError | undefined;
  const parser = createParser({
    // An event without data is not dispatched (the SSE spec; some relays
    // send `data:` alone as a keep-alive): like a comment, it neither
    // fails the stream nor counts as progress.
    onEvent: (event) => {
      if (event.data !== '') events.push(event);
    },
    onComment: () => {
      comments++;
    },
    onError: (error) => {
      if (error.type === 'max-buffer-size-exceeded') overflow = error;
    },
    maxBufferSize: options.maxEventSize,
  });
  const { decoder } = options;
  let finished = false;
  let received = 0;
  let failure: SluiceError | undefined;
  try {
    for await (const bytes of body) {
      parser.feed(decoder.write(bytes));
      if (overflow) throw tooLarge(options.maxEventSize, headers);
      if (comments > 0) {
        comments = 0;
        attempt.lastActivity = clock.now();
      }
      if (events.length === 0) continue;
      attempt.lastActivity = clock.now();
      for (const event of events.splice(0)) {
        if (finished) continue;
        // The parser bounds what it buffers across reads; an event that
        // arrived whole in one read is measured here.
        if (event.data.length > options.maxEventSize) throw tooLarge(options.maxEventSize, headers);
        if (event.data === '[DONE]') {
          finished = true;
          continue;
        }
        const json = parseJson(event.data);
        if (event.event === 'error' || isErrorBody(json)) {
          throw errorFromUpstream({ status: undefined, body: json ?? event.data, headers, now: clock.now(), secrets });
        }
        if (json === undefined) {
          throw new MalformedResponseError(`malformed SSE event: ${excerpt(event.data, 100, secrets)}`, { headers });
        }
        const usageChunk = (json as { usage?: unknown }).usage != null;
        const chunk = toChunk(json, { headers, secrets });
        if (chunk.usage) ctx.usage = chunk.usage;
        if (options.hideUsage && usageChunk && chunk.choices.length === 0) continue;
        received++;
        // The consumer's own time between chunks is not upstream silence.
        attempt.hold();
        yield chunk;
        attempt.release();
      }
    }
    if (!finished) throw new StreamCutError(`the stream ended without [DONE] after ${received} chunks`, received, { headers });
  } catch (error) {
    failure = attempt.reason();
    if (failure) throw failure;
    if (error instanceof SluiceError) throw (failure = error);
    const message = redact(String((error as Error)?.message ?? error), secrets);
    throw (failure = new StreamCutError(`the stream broke after ${received} chunks: ${message}`, received, { cause: error, headers }));
  } finally {
    // Stopped before the end (an error, the consumer's break): abort so
    // undici drops the socket instead of leaving it half-read in the pool.
    if (!finished) attempt.abort(failure ?? new AbortError('The stream was cancelled by its consumer'));
    attempt.done();
  }
}

function tooLarge(limit: number, headers: Record<string, string>): ResponseTooLargeError {
  return new ResponseTooLargeError(`an SSE event exceeded maxResponseBytes (${limit} characters)`, { headers });
}
