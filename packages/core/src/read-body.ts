import type { Attempt } from './attempt.js';
import { ResponseTooLargeError, StreamCutError } from './errors.js';
import type { TextCodec } from './text-codec.js';
import { redact } from './upstream-errors.js';

/** What {@link readBody} does at its limit. */
export interface ReadBodyOptions {
  /** The most bytes read. */
  limit: number;
  /**
   * `'truncate'`: keep the first `limit` bytes and stop reading (an error
   * body: its start says enough). `'fail'`: a ResponseTooLargeError (a
   * success body: half a completion is no completion).
   */
  atLimit: 'truncate' | 'fail';
  /** Response headers for the error (already redacted). */
  headers: Record<string, string>;
  secrets: readonly string[];
  /** How the bytes become text in this runtime. */
  codec: TextCodec;
}

/**
 * Reads a whole response body as UTF-8 text, never more than `limit`
 * bytes, so a misbehaving upstream cannot fill memory.
 *
 * @param body - the response body's bytes
 * @param attempt - its abort carries the attempt's timeout, and on a breach
 *   destroys the socket rather than reading the rest
 * @param options - see {@link ReadBodyOptions}
 * @throws ResponseTooLargeError past the limit with `atLimit: 'fail'`; the
 *   attempt's TimeoutError or AbortError; StreamCutError when the body breaks
 */
export async function readBody(body: AsyncIterable<Uint8Array>, attempt: Attempt, options: ReadBodyOptions): Promise<string> {
  const { limit, headers } = options;
  const parts: Uint8Array[] = [];
  let size = 0;
  let breach: ResponseTooLargeError | undefined;
  try {
    for await (const part of body) {
      const bytes = part;
      size += bytes.length;
      if (size > limit) {
        if (options.atLimit === 'truncate') {
          parts.push(bytes.subarray(0, bytes.length - (size - limit)));
          size = limit;
          break;
        }
        breach = new ResponseTooLargeError(`the response body exceeded maxResponseBytes (${limit})`, { headers });
        // Drops the socket instead of reading the rest.
        attempt.abort(breach);
        break;
      }
      parts.push(bytes);
    }
  } catch (error) {
    const message = redact(String((error as Error)?.message ?? error), options.secrets);
    throw attempt.reason() ?? new StreamCutError(`the response body broke: ${message}`, 0, { cause: error, headers });
  }
  if (breach) throw breach;
  return options.codec.text(parts, size);
}

/**
 * The error a body of declared length ends with when the client's read of
 * it (`Answer.text`) failed: the attempt's timeout or abort, else the break.
 *
 * @param error - what the read failed with
 * @param attempt - its abort carries the attempt's timeout
 * @param headers - response headers for the error (already redacted)
 * @param secrets - masked in the error's message
 */
export function declaredBreak(error: unknown, attempt: Attempt, headers: Record<string, string>, secrets: readonly string[]): unknown {
  const message = redact(String((error as Error)?.message ?? error), secrets);
  return attempt.reason() ?? new StreamCutError(`the response body broke: ${message}`, 0, { cause: error, headers });
}
