import { type SluiceError, toSluiceError } from './errors.js';


/** OpenAI's `error.type` for a status, which SDKs show beside the message. */
function typeFor(status: number): string {
  if (status === 400 || status === 422) return 'invalid_request_error';
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  return status >= 500 ? 'server_error' : 'api_error';
}

/** The OpenAI-shaped body of an error answer, with sluice's own code beside the provider's. */
export interface OpenAIErrorPayload {
  error: { message: string; type: string; param: string | null; code: string; sluice_code: string };
}

/** What {@link errorAnswer} gives: everything a `Response` needs. */
export interface ErrorAnswer {
  status: number;
  headers: Record<string, string>;
  body: OpenAIErrorPayload;
}

/** The upstream status on the error or on what caused it (retry's exhausted error keeps the last attempt's). */
function upstreamStatus(error: SluiceError): number | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 5 && current instanceof Error; depth++) {
    const status = (current as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status <= 599) return status;
    current = current.cause;
  }
  return undefined;
}

/**
 * The status for an error, from its data alone (no list of codes): the
 * upstream's own; else the one the error names (`httpStatus`: an open
 * circuit 503, a refused limit or budget 429); else a timeout of ours 504,
 * another upstream fault 502, a wait to respect 429, anything else 500.
 */
export function statusFor(error: SluiceError): number {
  const status = upstreamStatus(error) ?? error.httpStatus;
  if (status !== undefined) return status;
  if (error.code === 'TIMEOUT') return 504;
  if (error.upstreamFault) return 502;
  return error.retryAfterMs !== undefined ? 429 : 500;
}

/**
 * The HTTP answer for a failed call, as the OpenAI API gives it: the
 * status, `{ error: { message, type, param, code } }`, and `retry-after`
 * (seconds) with `retry-after-ms` when the error says when to come back.
 * Every answer carries `x-should-retry: false`: sluice already retried as
 * configured, so an SDK retrying on top would multiply the attempts.
 * `error.code` is the provider's own (`context_length_exceeded`) when the
 * upstream gave one, so code written against the provider keeps working.
 * Carries nothing the error does not (never a key: errors are redacted).
 *
 * @param caught - what the pipeline threw
 */
export function errorAnswer(caught: unknown): ErrorAnswer {
  const error = toSluiceError(caught);
  const status = statusFor(error);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-should-retry': 'false' };
  if (error.retryAfterMs !== undefined) {
    headers['retry-after'] = String(Math.ceil(error.retryAfterMs / 1000));
    headers['retry-after-ms'] = String(Math.ceil(error.retryAfterMs));
  }
  const providerCode = (error as { providerCode?: unknown }).providerCode;
  // A ValidationError names its field: OpenAI's `param` is the same thing, within the request body
  // (`messages.0.role`, not the `request.messages.0.role` of sluice's message).
  const named = (error as { param?: unknown }).param ?? (error as { field?: unknown }).field;
  const param = typeof named === 'string' && named.startsWith('request.') ? named.slice('request.'.length) : named;
  return {
    status,
    headers,
    body: {
      error: {
        message: error.message,
        type: typeFor(status),
        param: typeof param === 'string' ? param : null,
        code: typeof providerCode === 'string' && providerCode !== '' ? providerCode : error.code,
        sluice_code: error.code,
      },
    },
  };
}
