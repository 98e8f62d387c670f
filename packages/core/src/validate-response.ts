import * as z from 'zod/mini';
import { MalformedResponseError } from './errors.js';
import { chunkResponseSchema, completionResponseSchema } from './response-schemas.js';
import type { ChatCompletion, ChatCompletionChunk, Usage } from './schemas.js';
import { redact } from './upstream-errors.js';

/*
 * Every value the transport hands a caller has passed through here: a
 * valid completion or chunk comes out, or a MalformedResponseError is
 * thrown. The pass is hand-written (a few typeof checks per field a
 * caller dereferences, sanitising in place) because it runs on every
 * chunk; zod runs only on a rejected value, to name the bad field.
 *
 * The rules, decided per case:
 * - Rejected (MALFORMED_RESPONSE): a body that is not an object; `choices`
 *   not an array; a choice that is not an object; a completion choice
 *   without a `message` object (a `delta` in its place, `null`, missing);
 *   a chunk choice with a `message` and no `delta`, or with neither a
 *   `delta` nor a `finish_reason` (`choices: [{}]`); a `delta` or
 *   `message` that is not an object; `content`, `role`, `refusal` or
 *   `finish_reason` of the wrong type; `index` not a number; `tool_calls`
 *   not an array or holding a non-object; a tool call `type` other than
 *   `'function'`; a completion's tool call without a string `id`,
 *   `function.name` and `function.arguments`; `id` or `model` of a type
 *   other than string. Message content parts are passed through unchecked
 *   (providers add their own kinds). These are what a caller
 *   dereferences (`chunk.choices[0].delta.content`): letting them through
 *   would move the failure into the caller's code as a TypeError.
 * - Sanitised: `delta: null` becomes `{}` (nothing new in this chunk, as
 *   openai-node's own accumulator reads it); a finish-only chunk choice
 *   without a delta gets `delta: {}`; a missing `index` becomes the
 *   choice's (or tool call's) position; a missing `finish_reason` of a
 *   completion becomes `null`; a missing message `role` becomes
 *   `'assistant'`; `tool_calls: null` is removed; missing `id`/`model`
 *   become `''`; `object` becomes `'chat.completion'` or
 *   `'chat.completion.chunk'`, and a missing or non-numeric `created`
 *   becomes `0`; a completion's missing `content`, `refusal` and `logprobs`
 *   become `null` (as does a `logprobs` that is not an object), and its
 *   `usage: null` is removed; a chunk's missing `finish_reason` becomes
 *   `null` and a `logprobs` that is neither an object nor null is removed.
 *   With these the values are what the exported types (and openai-node's)
 *   say they are.
 * - Usage is sanitised, never rejected, because the answer itself is good:
 *   see {@link sanitiseUsage}.
 */

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isCount = (value: unknown): value is number => typeof value === 'number' && value >= 0 && Number.isFinite(value);

const optionalString = (value: unknown): boolean => value === undefined || value === null || typeof value === 'string';

/** Changes made by the sanitising below, ever: a value whose check left this unchanged is exactly as parsed. */
let edits = 0;

/** How many fields the checks have sanitised so far in this process (see `raw-json.ts`). */
export function editCount(): number {
  return edits;
}

function set(record: Record<string, unknown>, key: string, value: unknown): void {
  record[key] = value;
  edits++;
}

function drop(record: Record<string, unknown>, key: string): void {
  delete record[key];
  edits++;
}

/** Parses JSON, or returns undefined for text that is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Whether `value` is an error object (`{ error: … }`) rather than an answer. */
export function isErrorBody(value: unknown): boolean {
  return isObject(value) && value.error !== undefined && value.error !== null && !Array.isArray(value.choices);
}

/**
 * Makes an upstream's usage safe to count, in place, and returns it; or
 * returns undefined when nothing in it can be counted. No NaN, string or
 * negative number reaches a counter:
 * - not an object (a string, a number, an array) → dropped;
 * - `prompt_tokens` or `completion_tokens` not a finite number ≥ 0
 *   (`"12"`, `null`, `-5`, missing) → the whole usage is dropped, since
 *   half a usage would be counted as if it were all of it; numeric strings
 *   are not coerced, because a provider sending them is already guessing;
 * - `total_tokens` bad or missing → their sum;
 * - a `*_tokens_details` that is not an object is removed, and so is any
 *   bad count inside one (`cached_tokens`, `reasoning_tokens`).
 *
 * @param usage - the `usage` field as received
 * @returns the usage, sanitised, or undefined
 */
export function sanitiseUsage(usage: unknown): Usage | undefined {
  if (!isObject(usage)) return undefined;
  if (!isCount(usage.prompt_tokens) || !isCount(usage.completion_tokens)) return undefined;
  if (!isCount(usage.total_tokens)) set(usage, 'total_tokens', usage.prompt_tokens + usage.completion_tokens);
  sanitiseDetails(usage, 'prompt_tokens_details');
  sanitiseDetails(usage, 'completion_tokens_details');
  return usage as unknown as Usage;
}

function sanitiseDetails(usage: Record<string, unknown>, field: string): void {
  const details = usage[field];
  if (details === undefined) return;
  if (!isObject(details)) {
    drop(usage, field);
    return;
  }
  for (const key of Object.keys(details)) if (key.endsWith('_tokens') && !isCount(details[key])) drop(details, key);
}

/**
 * Checks (and sanitises in place) a non-streamed completion.
 *
 * @param value - the parsed JSON body
 * @param context - response headers and secrets for the error
 * @throws MalformedResponseError naming the bad field
 */
export function toCompletion(value: unknown, context: ErrorContext): ChatCompletion {
  if (isCompletion(value)) return value;
  throw malformed('completion', completionResponseSchema, value, context);
}

/**
 * Whether `value` is a completion by the rules the transport checks one
 * with, sanitising it in place as the transport does (a missing `id`
 * filled, an uncountable usage dropped): for a middleware that answers
 * with a completion it did not get from its transport (a cache reading
 * what it stored), which must hand on nothing the transport would not.
 *
 * @param value - a parsed completion
 * @example
 * ```ts
 * const response = JSON.parse(text);
 * if (isCompletion(response)) ctx.response = response;
 * ```
 */
export function isCompletion(value: unknown): value is ChatCompletion {
  if (!checkEnvelope(value)) return false;
  const choices = value.choices as unknown[];
  for (let i = 0; i < choices.length; i++) if (!checkCompletionChoice(choices[i], i)) return false;
  if (value.usage === null) drop(value, 'usage');
  finishEnvelope(value, 'chat.completion');
  return true;
}

/**
 * Whether `value` is a stream chunk by the transport's rules, sanitised in
 * place as {@link isCompletion} does for a completion.
 *
 * @param value - a parsed chunk
 */
export function isChunk(value: unknown): value is ChatCompletionChunk {
  if (!checkEnvelope(value)) return false;
  const choices = value.choices as unknown[];
  for (let i = 0; i < choices.length; i++) if (!checkChunkChoice(choices[i], i)) return false;
  finishEnvelope(value, 'chat.completion.chunk');
  return true;
}

/**
 * Checks (and sanitises in place) one stream chunk.
 *
 * @param value - the parsed `data:` payload
 * @param context - response headers and secrets for the error
 * @throws MalformedResponseError naming the bad field
 */
export function toChunk(value: unknown, context: ErrorContext): ChatCompletionChunk {
  if (isChunk(value)) return value;
  throw malformed('stream chunk', chunkResponseSchema, value, context);
}

/** What a MalformedResponseError is built with. */
export interface ErrorContext {
  headers: Record<string, string>;
  secrets: readonly string[];
  status?: number;
}

function checkEnvelope(value: unknown): value is Record<string, unknown> {
  return isObject(value) && Array.isArray(value.choices) && optionalString(value.id) && optionalString(value.model);
}

function finishEnvelope(value: Record<string, unknown>, object: 'chat.completion' | 'chat.completion.chunk'): Record<string, unknown> {
  if (typeof value.id !== 'string') set(value, 'id', '');
  if (typeof value.model !== 'string') set(value, 'model', '');
  // Informational only: what is missing or of a wrong type is filled rather than failing the answer.
  if (value.object !== object) set(value, 'object', object);
  if (typeof value.created !== 'number') set(value, 'created', 0);
  const usage = value.usage;
  if (usage !== undefined && usage !== null && sanitiseUsage(usage) === undefined) drop(value, 'usage');
  return value;
}

/** An optional string field the wire type has no null for: absent, a string, or null (removed). */
function stringOrAbsent(record: Record<string, unknown>, key: string): boolean {
  const value = record[key];
  if (value === undefined || typeof value === 'string') return true;
  if (value !== null) return false;
  drop(record, key);
  return true;
}

function checkIndex(choice: Record<string, unknown>, position: number): boolean {
  if (choice.index === undefined) set(choice, 'index', position);
  else if (typeof choice.index !== 'number') return false;
  return true;
}

function checkCompletionChoice(choice: unknown, position: number): boolean {
  if (!isObject(choice) || !checkIndex(choice, position)) return false;
  const message = choice.message;
  if (!isObject(message)) return false;
  if (choice.finish_reason === undefined) set(choice, 'finish_reason', null);
  else if (!optionalString(choice.finish_reason)) return false;
  if (choice.logprobs !== null && !isObject(choice.logprobs)) set(choice, 'logprobs', null);
  if (message.role === undefined) set(message, 'role', 'assistant');
  else if (message.role !== 'assistant') return false;
  const content = message.content;
  if (!(optionalString(content) || Array.isArray(content)) || !optionalString(message.refusal)) return false;
  if (content === undefined) set(message, 'content', null);
  if (message.refusal === undefined) set(message, 'refusal', null);
  if (!stringOrAbsent(message, 'name')) return false;
  const calls = message.tool_calls;
  if (calls === null) drop(message, 'tool_calls');
  else if (calls !== undefined) {
    if (!Array.isArray(calls)) return false;
    for (const call of calls) {
      if (!isObject(call) || typeof call.id !== 'string') return false;
      if (call.type === undefined) set(call, 'type', 'function');
      else if (call.type !== 'function') return false;
      const fn = call.function;
      if (!isObject(fn) || typeof fn.name !== 'string' || typeof fn.arguments !== 'string') return false;
    }
  }
  return true;
}

function checkChunkChoice(choice: unknown, position: number): boolean {
  if (!isObject(choice) || !checkIndex(choice, position) || !optionalString(choice.finish_reason)) return false;
  if (choice.finish_reason === undefined) set(choice, 'finish_reason', null);
  if (choice.logprobs !== undefined && choice.logprobs !== null && !isObject(choice.logprobs)) drop(choice, 'logprobs');
  let delta = choice.delta;
  if (delta === undefined) {
    if (choice.message !== undefined || typeof choice.finish_reason !== 'string') return false;
    set(choice, 'delta', (delta = {}));
  } else if (delta === null) set(choice, 'delta', (delta = {}));
  if (!isObject(delta)) return false;
  if (!stringOrAbsent(delta, 'role') || !optionalString(delta.content) || !optionalString(delta.refusal)) return false;
  const calls = delta.tool_calls;
  if (calls === null) drop(delta, 'tool_calls');
  else if (calls !== undefined) {
    if (!Array.isArray(calls)) return false;
    for (let i = 0; i < calls.length; i++) {
      const call: unknown = calls[i];
      if (!isObject(call) || !checkIndex(call, i) || !stringOrAbsent(call, 'id') || !stringOrAbsent(call, 'type')) return false;
      if (call.type !== undefined && call.type !== 'function') return false;
      const fn = call.function;
      if (fn === null) drop(call, 'function');
      else if (fn !== undefined && (!isObject(fn) || !stringOrAbsent(fn, 'name') || !stringOrAbsent(fn, 'arguments'))) return false;
    }
  }
  return true;
}

function malformed(what: string, schema: z.core.$ZodType, value: unknown, context: ErrorContext): MalformedResponseError {
  // In English (validate.ts sets the locale): a transport's options were parsed there before any response.
  const result = z.safeParse(schema, value);
  const issue = result.success ? undefined : result.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : '';
  const why = issue ? `${where}${issue.message}` : 'not a chat completion';
  return new MalformedResponseError(redact(`upstream sent a malformed ${what}: ${why}`, context.secrets), {
    status: context.status,
    headers: context.headers,
  });
}
