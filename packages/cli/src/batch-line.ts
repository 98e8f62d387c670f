import { randomBytes } from 'node:crypto';
import { type ChatCompletion, type ChatCompletionRequest, type SluiceError, UpstreamError } from '@sluice/core';

/** One request of an OpenAI Batch API input file, as read. */
export interface BatchRequest {
  customId: string;
  body: ChatCompletionRequest;
}

/** What one input line turned out to be: a request, or why it cannot be one. */
export type ParsedLine = { ok: true; request: BatchRequest } | { ok: false; reason: string };

/** The one endpoint a chat pipeline serves; the Batch API also accepts it without `/v1`. */
const chatUrls = new Set(['/v1/chat/completions', '/chat/completions']);

/** Longest part of a line a reason quotes: a reason is one line of a terminal, not a copy of the input. */
const maxQuoted = 120;

/** `text`, cut to {@link maxQuoted} characters. */
function cut(text: string): string {
  return text.length <= maxQuoted ? text : `${text.slice(0, maxQuoted)}… (${text.length} characters)`;
}

/**
 * A value of an input line as JSON, cut to a terminal line's share: a
 * 200 kB `url` is named, not echoed.
 *
 * @param value - what the line holds
 */
export function shown(value: unknown): string {
  return cut(JSON.stringify(value) ?? String(value));
}

/**
 * Reads one line of an OpenAI Batch API input file: `custom_id`, `method`
 * (`POST`), `url` (`/v1/chat/completions`) and `body` (a chat request).
 * The body itself is validated later, by the pipeline, so a bad body
 * becomes that line's error in the output rather than a skipped line.
 *
 * @param text - the line, without its newline
 */
export function parseBatchLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `not JSON (${cut((error as Error).message)})` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not a JSON object' };
  const line = value as Record<string, unknown>;
  const customId = line.custom_id;
  if (typeof customId !== 'string' || customId.length === 0) return { ok: false, reason: 'custom_id must be a non-empty string' };
  if (line.method !== undefined && line.method !== 'POST') return { ok: false, reason: `method must be POST, got ${shown(line.method)}` };
  if (line.url !== undefined && (typeof line.url !== 'string' || !chatUrls.has(line.url))) {
    return { ok: false, reason: `url must be /v1/chat/completions, got ${shown(line.url)}` };
  }
  const body = line.body;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return { ok: false, reason: 'body must be a JSON object' };
  if (typeof (body as { model?: unknown }).model !== 'string') return { ok: false, reason: 'body.model must be a string' };
  if ((body as { stream?: unknown }).stream === true) return { ok: false, reason: 'body.stream is not supported in a batch' };
  return { ok: true, request: { customId, body: body as ChatCompletionRequest } };
}

// A random prefix per run and a counter: unique like a random id per line, without the cost of one.
const runPrefix = randomBytes(6).toString('hex');
let counter = 0;
const batchRequestId = () => `batch_req_${runPrefix}${(counter++).toString(16).padStart(12, '0')}`;

/**
 * The output line of a request that succeeded, in the Batch API's shape.
 *
 * @param customId - the input line's `custom_id`
 * @param completion - the upstream's answer
 * @param headers - the upstream's response headers (for `x-request-id`)
 */
export function successLine(customId: string, completion: ChatCompletion, headers: Readonly<Record<string, string>> | undefined): string {
  const response = { status_code: 200, request_id: headers?.['x-request-id'] ?? '', body: completion };
  return JSON.stringify({ id: batchRequestId(), custom_id: customId, response, error: null });
}

/**
 * The output line of a request that failed: `error` is always set (sluice's
 * stable `code` and the message), and `response` carries the upstream's
 * status and an OpenAI-shaped error body when the upstream answered, else
 * is `null` (a connection error, a timeout, a request refused locally).
 *
 * @param customId - the input line's `custom_id`
 * @param error - why it failed (for a call retried to exhaustion: the last attempt's error)
 * @param note - added to the message (how many attempts were made)
 */
export function failureLine(customId: string, error: SluiceError, note?: string): string {
  // An answer the upstream gave with a success status but that could not be read has no response to show.
  const status = error instanceof UpstreamError && (error.status ?? 0) >= 400 ? error.status : undefined;
  const response =
    status === undefined
      ? null
      : {
          status_code: status,
          request_id: (error as UpstreamError).headers?.['x-request-id'] ?? '',
          body: { error: { message: error.message, type: null, param: null, code: (error as UpstreamError).providerCode ?? null } },
        };
  const message = note === undefined ? error.message : `${error.message} (${note})`;
  return JSON.stringify({ id: batchRequestId(), custom_id: customId, response, error: { code: error.code, message } });
}
