import { StringDecoder } from 'node:string_decoder';
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import type { Dispatcher } from 'undici';
import type { Attempt } from './attempt.js';
import type { CompletionContext } from './context.js';
import { AbortError, MalformedResponseError, SluiceError, StreamCutError } from './errors.js';
import type { ChatCompletionChunk, Usage } from './schemas.js';
import { errorFromUpstream, redact } from './upstream-errors.js';
import { isChunk, isErrorBody, parseJson } from './validate-response.js';

/** Reads SSE events into chunks; the attempt's timer watches for silence between them. */
export async function* readEvents(
  ctx: CompletionContext,
  body: Dispatcher.ResponseData['body'],
  attempt: Attempt,
  options: { hideUsage: boolean; headers: Record<string, string>; secrets: readonly string[] },
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  const { clock } = ctx;
  const { headers, secrets } = options;
  const events: EventSourceMessage[] = [];
  const parser = createParser({ onEvent: (event) => events.push(event) });
  // Node's StringDecoder keeps a character split across packets whole, and
  // costs less to make than a TextDecoder, once per stream.
  const decoder = new StringDecoder('utf8');
  let finished = false;
  let received = 0;
  try {
    for await (const bytes of body) {
      attempt.lastActivity = clock.now();
      parser.feed(decoder.write(bytes as Buffer));
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
    // Stopped before the end (break, error): abort so undici drops the socket
    // instead of leaving it half-read in the pool.
    if (!finished) attempt.abort(new AbortError('The stream was cancelled by its consumer'));
    attempt.done();
  }
}

