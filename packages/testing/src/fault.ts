import type { MockReply } from './mock-reply.js';
import { replyIssue } from './reply-shape.js';

/**
 * One scripted misbehaviour of the mock upstream, discriminated by `kind`.
 * Use it with `upstream.enqueue(...)` (one-shot, in order) or in a
 * {@link FaultRule} (random, seeded).
 *
 * "Chunks" count the `chat.completion.chunk` events of a streamed answer,
 * the first being the `{ role: 'assistant' }` delta; `afterChunks` defaults
 * to 2 (that role chunk and the first content delta).
 *
 * - `ok`: answer normally (optionally with a scripted reply), even when a random rule would fire.
 * - `status`: an error status with an OpenAI-shaped JSON error (or `body`) and chosen `headers`.
 * - `html`: an HTML error page (status 502 by default) with `content-type: text/html`.
 * - `malformed`: status 200 whose JSON body is not JSON; for a stream, a `data:` line that is not JSON, then the end.
 * - `error-body`: status 200 whose JSON body is `{ error: {...} }`.
 * - `delay`: a slow but successful answer: `latencyMs` before headers, `chunkDelayMs` between events.
 * - `reset`: the TCP connection is reset before headers, or `at: 'mid-stream'` after `afterChunks` chunks
 *   (for a JSON answer: after the headers and half the body).
 * - `cut`: the stream ends cleanly after `afterChunks` chunks, without usage or `data: [DONE]`
 *   (for a JSON answer: half the body, then a clean end).
 * - `sse-error`: after `afterChunks` chunks, an SSE error event, then the end (for a JSON answer: like `error-body`).
 * - `hang`: no answer at all until the client gives up or the server closes.
 * - `raw`: status 200 with payloads of your own: the JSON `body`, or the stream's `chunks` (each a `data:` payload),
 *   given as is or made from the normal ones; valid JSON that is not a valid answer, say.
 * - `usage`: a normal answer whose `usage` is exactly this value (a string, a negative number, `null`, …).
 *
 * @example
 * ```ts
 * upstream.enqueue(
 *   { kind: 'status', status: 429, headers: { 'retry-after': '2' } },
 *   { kind: 'status', status: 400, code: 'context_length_exceeded' },
 *   { kind: 'reset', at: 'mid-stream', afterChunks: 3 },
 *   { kind: 'hang' },
 * );
 * ```
 */
export type Fault =
  | {
      kind: 'ok';
      /** What this one answer says; the server's `reply` option when omitted. */
      reply?: string | MockReply;
    }
  | {
      kind: 'status';
      /** The HTTP status: 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504, … */
      status: number;
      /** `error.message`; the real API's message for the status (or `code`) when omitted. */
      message?: string;
      /** `error.type`; derived from the status when omitted. */
      type?: string;
      /** `error.code`, e.g. `'context_length_exceeded'`; derived from the status when omitted. */
      code?: string | null;
      /** `error.param`; `'messages'` for `context_length_exceeded`, else `null`, when omitted. */
      param?: string | null;
      /** Replaces the whole body: an object is sent as JSON, a string as is. */
      body?: object | string;
      /** Response headers: `retry-after` (seconds or HTTP date), `retry-after-ms`, `x-ratelimit-*`, `x-should-retry`. */
      headers?: Readonly<Record<string, string>>;
    }
  | {
      kind: 'html';
      /** The HTTP status; 502 when omitted. */
      status?: number;
      /** The HTML sent; a small nginx-style error page when omitted. */
      body?: string;
      headers?: Readonly<Record<string, string>>;
    }
  | {
      kind: 'malformed';
      /** The text that is not JSON (the body, or the `data:` payload of a stream). */
      body?: string;
      /** For a stream, how many chunks precede the malformed line. */
      afterChunks?: number;
      headers?: Readonly<Record<string, string>>;
    }
  | {
      kind: 'error-body';
      message?: string;
      type?: string;
      code?: string | null;
      param?: string | null;
      /** Replaces the whole JSON body. */
      body?: object;
      headers?: Readonly<Record<string, string>>;
    }
  | {
      kind: 'delay';
      /** Milliseconds before the headers; the server's `latencyMs` when omitted. */
      latencyMs?: number;
      /** Milliseconds between SSE events; the server's `chunkDelayMs` when omitted. */
      chunkDelayMs?: number;
    }
  | {
      kind: 'reset';
      /** When the connection is reset; `'before-headers'` when omitted. */
      at?: 'before-headers' | 'mid-stream';
      /** With `at: 'mid-stream'`, how many chunks are sent first. */
      afterChunks?: number;
    }
  | {
      kind: 'cut';
      /** How many chunks are sent before the stream ends. */
      afterChunks?: number;
    }
  | {
      kind: 'sse-error';
      /** How many chunks are sent before the error. */
      afterChunks?: number;
      /** `'event'` (default) sends `event: error` + `data: {"error":…}`; `'data'` sends only the `data:` line, as OpenAI does. */
      style?: 'event' | 'data';
      message?: string;
      type?: string;
      code?: string | null;
      param?: string | null;
      /** Replaces the whole `data:` payload: an object is sent as JSON, a string as is. */
      body?: object | string;
    }
  | { kind: 'hang' }
  | {
      kind: 'raw';
      /**
       * A JSON request's body, sent with status 200: an object as JSON, a
       * string as is, or a function of the normal completion returning
       * either. The normal completion when omitted.
       */
      body?: object | string | ((completion: Record<string, unknown>) => object | string);
      /**
       * A stream's `data:` payloads, in order: an object as JSON, a string
       * as is, or a function of the normal chunks returning them. The normal
       * chunks when omitted.
       */
      chunks?: ReadonlyArray<object | string> | ((chunks: Array<Record<string, unknown>>) => ReadonlyArray<object | string>);
      /** Whether the stream ends with `data: [DONE]`; true when omitted. */
      done?: boolean;
    }
  | {
      kind: 'usage';
      /**
       * The `usage` sent, whatever it is: in the JSON body, and in a stream's
       * usage chunk (sent when the request asks for `include_usage`).
       * `undefined` leaves the field out.
       */
      usage: unknown;
    };

/**
 * A probabilistic fault: on each completion request, `fault` happens with
 * `probability`. Rules share one seeded draw per request and their
 * probabilities add up (at most 1), so `[{ probability: 0.3, … }, { probability: 0.05, … }]`
 * fails 30% and 5% of requests, never both at once.
 *
 * @example
 * ```ts
 * const rules: FaultRule[] = [
 *   { probability: 0.3, fault: { kind: 'status', status: 503 } },
 *   { probability: 0.05, fault: { kind: 'reset' } },
 * ];
 * const upstream = await mockUpstream({ seed: 42, faults: rules });
 * ```
 */
export interface FaultRule {
  /** The share of requests, between 0 and 1, that get `fault`. */
  probability: number;
  fault: Fault;
}

/**
 * The default of every `afterChunks`: the role chunk and the first content delta.
 *
 * @example
 * ```ts
 * events.slice(0, fault.afterChunks ?? DEFAULT_AFTER_CHUNKS);
 * ```
 */
export const DEFAULT_AFTER_CHUNKS = 2;

/**
 * Picks the rule whose slice of [0, 1) contains `draw`; internal.
 *
 * @param rules - the rules in order
 * @param draw - one number in [0, 1) from the seeded generator
 * @example
 * ```ts
 * pickFault(rules, random());
 * ```
 */
export function pickFault(rules: readonly FaultRule[], draw: number): Fault | undefined {
  let edge = 0;
  for (const rule of rules) {
    edge += rule.probability;
    if (draw < edge) return rule.fault;
  }
  return undefined;
}

/**
 * Throws when a rule's probability is outside [0, 1] or they add up past 1; internal.
 *
 * @param rules - the `faults` option
 * @throws RangeError naming the bad rule
 * @example
 * ```ts
 * validateRules([{ probability: 2, fault: { kind: 'hang' } }]); // throws
 * ```
 */
export function validateRules(rules: readonly FaultRule[]): void {
  let total = 0;
  rules.forEach((rule, index) => {
    if (!(rule.probability >= 0 && rule.probability <= 1)) {
      throw new RangeError(`mockUpstream: faults[${index}].probability must be between 0 and 1, got ${rule.probability}`);
    }
    validateFault(rule.fault, `faults[${index}].fault`);
    total += rule.probability;
  });
  // A little slack so 0.1 + 0.2 + 0.7 is accepted despite floating point.
  if (total > 1 + 1e-9) throw new RangeError(`mockUpstream: faults probabilities add up to ${total}, more than 1`);
}

function isObject(value: unknown): value is object {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'an array';
  return value === null ? 'null' : typeof value === 'object' ? 'an object' : String(value);
}

function oneOf(what: string, ok: (value: unknown) => boolean): (value: unknown) => string | undefined {
  return (value) => (ok(value) ? undefined : what);
}

const text = oneOf('a string', (v) => typeof v === 'string');
const textOrNull = oneOf('a string or null', (v) => typeof v === 'string' || v === null);
const objectOrText = oneOf('an object or a string', (v) => typeof v === 'string' || isObject(v));
const statusCode = oneOf('an HTTP status from 100 to 599', (v) => Number.isInteger(v) && (v as number) >= 100 && (v as number) <= 599);
const milliseconds = oneOf('0 or more', (v) => typeof v === 'number' && v >= 0 && Number.isFinite(v));
const count = oneOf('a whole number, 0 or more', (v) => Number.isInteger(v) && (v as number) >= 0);
const headerRecord = oneOf('an object of string values', (v) => isObject(v) && Object.values(v).every((h) => typeof h === 'string'));

/** What each kind of fault takes, beside `kind`, and the check of each field. */
const faultFields: Record<Fault['kind'], Record<string, (value: unknown) => string | undefined>> = {
  ok: { reply: (v) => (typeof v === 'string' ? undefined : isObject(v) ? replyProblem(v) : 'must be a string or a MockReply') },
  status: { status: statusCode, message: text, type: text, code: textOrNull, param: textOrNull, body: objectOrText, headers: headerRecord },
  html: { status: statusCode, body: text, headers: headerRecord },
  malformed: { body: text, afterChunks: count, headers: headerRecord },
  'error-body': { message: text, type: text, code: textOrNull, param: textOrNull, body: oneOf('an object', isObject), headers: headerRecord },
  delay: { latencyMs: milliseconds, chunkDelayMs: milliseconds },
  reset: { at: oneOf("'before-headers' or 'mid-stream'", (v) => v === 'before-headers' || v === 'mid-stream'), afterChunks: count },
  cut: { afterChunks: count },
  'sse-error': {
    afterChunks: count,
    style: oneOf("'event' or 'data'", (v) => v === 'event' || v === 'data'),
    message: text,
    type: text,
    code: textOrNull,
    param: textOrNull,
    body: objectOrText,
  },
  hang: {},
  raw: {
    body: oneOf('an object, a string or a function', (v) => typeof v === 'string' || typeof v === 'function' || isObject(v)),
    chunks: oneOf('an array or a function', (v) => Array.isArray(v) || typeof v === 'function'),
    done: oneOf('a boolean', (v) => typeof v === 'boolean'),
  },
  usage: { usage: () => undefined },
};

/**
 * Throws on a fault the mock would not play as written, naming the field:
 * an unknown `kind` (a typo such as `'stauts'` used to be answered as a
 * normal completion, so a test of a fault passed without one), a field the
 * kind does not take, or a value out of range (`status: 99` made every
 * request a 500 of the mock's own); internal.
 *
 * @param fault - what was given
 * @param field - where it was given (`enqueue[0]`, `faults[1].fault`)
 * @throws TypeError or RangeError naming the field
 * @example
 * ```ts
 * validateFault({ kind: 'stauts', status: 503 }, 'enqueue[0]'); // throws
 * ```
 */
export function validateFault(fault: unknown, field: string): asserts fault is Fault {
  if (!isObject(fault)) throw new TypeError(`mockUpstream: ${field} must be a fault object ({ kind: … }), got ${describe(fault)}`);
  const { kind } = fault as { kind?: unknown };
  const fields = typeof kind === 'string' && Object.hasOwn(faultFields, kind) ? faultFields[kind as Fault['kind']] : undefined;
  if (fields === undefined) {
    throw new TypeError(`mockUpstream: ${field}.kind must be one of ${Object.keys(faultFields).join(', ')}; got ${describe(kind)}`);
  }
  if (kind === 'status' && (fault as { status?: unknown }).status === undefined) {
    throw new TypeError(`mockUpstream: ${field}.status is required for a 'status' fault`);
  }
  for (const [key, value] of Object.entries(fault)) {
    if (key === 'kind') continue;
    const check = Object.hasOwn(fields, key) ? fields[key] : undefined;
    if (check === undefined) throw new TypeError(`mockUpstream: ${field}.${key} is not a field of a '${kind}' fault`);
    if (value === undefined) continue;
    const problem = check(value);
    if (problem !== undefined) throw new RangeError(`mockUpstream: ${field}.${key} must be ${problem}, got ${describe(value)}`);
  }
}

/** Why a fault's reply is not a MockReply, if it is not (see `replyIssue`). */
function replyProblem(reply: unknown): string | undefined {
  const issue = replyIssue(reply);
  // Read after "must be": the validator says what was expected, then what came.
  return issue && `a MockReply (its ${issue.field.slice(1)} ${issue.why})`;
}
