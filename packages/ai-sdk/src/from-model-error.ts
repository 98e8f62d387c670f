import {
  AbortError,
  AuthError,
  BadRequestError,
  ConnectionError,
  ContextLengthError,
  RateLimitError,
  ServerError,
  SluiceError,
  StatusError,
  UnexpectedError,
  type UpstreamErrorOptions,
} from '@sluice/core';
import { parseRetryAfter, redact } from '@sluice/core/kit';
import { APICallError } from 'ai';

/** Messages of providers whose prompt did not fit the model's window. */
const contextLength = /context.{0,20}(length|window)|too (long|many tokens)|maximum.{0,20}tokens|prompt is too long/i;

/**
 * The sluice error for what a model call threw, so retry, breaker and the
 * limiter decide from it as from an HTTP transport's: the status, the
 * provider's `retry-after`, context-length detection. The model's error is
 * the `cause`, and is what the caller gets back (see `toCallerError`).
 *
 * Anything else is read by where it came from. An error part, or a stream
 * that failed while it was read, is the upstream's (the providers turn an
 * SSE `error` event into an error part): a retryable `SERVER_ERROR`. A
 * `doGenerate` or `doStream` that threw something other than an
 * `APICallError` did what the AI SDK's own providers never do (they wrap
 * every HTTP and network failure in one): a bug or a custom provider's own
 * error, which the AI SDK would not retry either. It is `UNEXPECTED`: not
 * retried, not an outage to a breaker, and the caller gets it back as thrown.
 *
 * @param error - what `doGenerate` or `doStream` threw, or a stream's error part
 * @param now - the clock's now, for an HTTP-date `retry-after`
 * @param source - `'threw'` for what `doGenerate` or `doStream` threw, `'stream'` for an error part or a failed read
 */
export function fromModelError(error: unknown, now: number, source: 'threw' | 'stream'): SluiceError {
  if (error instanceof SluiceError) return error;
  if ((error as { name?: unknown } | null)?.name === 'AbortError') return new AbortError('The call was aborted', { cause: error });
  if (!APICallError.isInstance(error)) {
    if (source === 'threw') return new UnexpectedError(error);
    const message = redact(error instanceof Error ? error.message : String(error), []);
    return new ServerError(`the model failed: ${message}`, { cause: error });
  }
  const headers = error.responseHeaders ?? {};
  const status = error.statusCode;
  const options: UpstreamErrorOptions = { cause: error, headers, ...(status !== undefined ? { status } : {}) };
  const retryAfterMs = parseRetryAfter(headers, now);
  if (retryAfterMs !== undefined) options.retryAfterMs = retryAfterMs;
  const message = error.message;
  if (status === undefined) return new ConnectionError(`the model could not be reached: ${message}`, options);
  if (status === 429) return new RateLimitError(message, options);
  if (status === 401 || status === 403) return new AuthError(message, options);
  if (status === 400 || status === 413) {
    return contextLength.test(message) ? new ContextLengthError(message, options) : new BadRequestError(message, options);
  }
  if (status >= 500) return new ServerError(message, { ...options, retryable: error.isRetryable || status !== 501 });
  return new StatusError(status, message, options);
}

/**
 * What the caller gets for a failed call: the model's own `APICallError`
 * when the failure was the model's (the AI SDK's error type, as without
 * sluice), marked not retryable because sluice already retried as
 * configured; sluice's own error otherwise (an open circuit, a limit, a
 * budget), which the AI SDK does not retry either. An `UNEXPECTED` error
 * gives back what was thrown (the model's own `TypeError`, a middleware's
 * bug), as it would be without sluice.
 *
 * @param error - what the pipeline threw
 */
export function toCallerError(error: unknown): unknown {
  if (error instanceof UnexpectedError) return error.cause;
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    if (APICallError.isInstance(current)) {
      if (!current.isRetryable) return current;
      return new APICallError({
        message: current.message,
        url: current.url,
        requestBodyValues: current.requestBodyValues,
        ...(current.statusCode !== undefined ? { statusCode: current.statusCode } : {}),
        ...(current.responseHeaders ? { responseHeaders: current.responseHeaders } : {}),
        ...(current.responseBody !== undefined ? { responseBody: current.responseBody } : {}),
        cause: current.cause,
        isRetryable: false,
        data: current.data,
      });
    }
    if (current instanceof SluiceError && !(current.cause instanceof Error)) break;
    current = current.cause;
  }
  return error;
}
