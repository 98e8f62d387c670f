import type { ChatCompletionRequest } from './chat-completion-request.js';

/*
 * The request a call parses, the usual way, without zod. Every call's
 * request is checked against `chatCompletionRequestSchema` at the
 * entrance; zod's compiled parser for it is fast once warm (0.2 µs), but
 * a call that comes after a wait (one call at a time over the network,
 * the usual service) finds it cold, and there the parse cost about 5 µs:
 * the empty pipeline spent 10.6 to 12.2 µs before it sent a stream
 * request, 5.7 to 6.2 with no validation at all, and spends 7.8 to 8.6
 * with this pass (calls alternated with raw undici's at c=1). It reads
 * what a plain request holds in a few typeof checks (messages of text
 * and images, function tools and their calls, the sampling fields), and builds what
 * the schema would.
 *
 * It answers only when it is sure: the value it returns is the one zod
 * returns for the same input (the same keys in the same order, a new
 * object or array for every node the schema describes, the caller's own
 * value for every field it leaves loose), and `undefined` for anything
 * else (an invalid request; one it does not read: custom tools, audio
 * and file parts, the `function` role, an object not made by `{}`),
 * which then goes to zod, for the error that names the field. A seeded
 * test holds the two to the same answers.
 */

const isPlain = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;

/** z.number(): finite. */
const isNumber = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** z.number().check(z.int(), z.positive()). */
const isCount = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0;

/**
 * An array of `length` to fill: one pushed to from empty takes room for 17
 * and keeps it while the call is in flight (what zod builds is sized).
 */
const arrayOf = (length: number): unknown[] => new Array<unknown>(length);

const nullish = (value: unknown): value is null | undefined => value === undefined || value === null;

/** The request's known fields, in the schema's order: the order zod writes them in. */
const requestFields = new Set(['model', 'messages', 'stream', 'stream_options', 'max_tokens', 'max_completion_tokens', 'n', 'temperature', 'top_p', 'tools', 'tool_choice', 'user']);
const userFields = new Set(['role', 'content', 'name']);
const assistantFields = new Set(['role', 'content', 'name', 'refusal', 'tool_calls']);
const toolMessageFields = new Set(['role', 'content', 'tool_call_id']);
const textPartFields = new Set(['type', 'text']);
const imagePartFields = new Set(['type', 'image_url']);
const imageFields = new Set(['url', 'detail']);
const toolCallFields = new Set(['id', 'type', 'function']);
const functionCallFields = new Set(['name', 'arguments']);
const streamOptionFields = new Set(['include_usage']);
const toolDefinitionFields = new Set(['type', 'function']);
const functionFields = new Set(['name', 'description', 'parameters', 'strict']);
const noFields = new Set<string>();
const countFields = ['max_tokens', 'max_completion_tokens', 'n'] as const;
const numberFields = ['temperature', 'top_p'] as const;

/**
 * Copies the fields of `from` the schema leaves loose into `to`, after its
 * known ones, as a loose object does; false for a field named `__proto__`
 * (assigning it would set the copy's prototype: zod decides).
 */
function copyLoose(from: Record<string, unknown>, to: Record<string, unknown>, known: ReadonlySet<string>): boolean {
  for (const key in from) {
    if (known.has(key)) continue;
    if (key === '__proto__') return false;
    to[key] = from[key];
  }
  return true;
}

/**
 * `request` as `chatCompletionRequestSchema` parses it, or `undefined`
 * when this pass cannot tell (zod then parses it).
 */
export function quickRequest(request: unknown): ChatCompletionRequest | undefined {
  if (!isPlain(request)) return undefined;
  const { model } = request;
  if (typeof model !== 'string' || model === '') return undefined;
  const messages = quickMessages(request.messages);
  if (messages === undefined) return undefined;
  // Built from {} (room for four fields in the object itself), not from a
  // literal of two: fields added past a literal's own go to a second array.
  const out: Record<string, unknown> = {};
  out.model = model;
  out.messages = messages;
  if ('stream' in request) {
    const { stream } = request;
    if (!nullish(stream) && typeof stream !== 'boolean') return undefined;
    out.stream = stream;
  }
  if ('stream_options' in request) {
    const options = request.stream_options;
    if (nullish(options)) out.stream_options = options;
    else {
      if (!isPlain(options)) return undefined;
      const copy: Record<string, unknown> = {};
      if ('include_usage' in options) {
        const include = options.include_usage;
        if (include !== undefined && typeof include !== 'boolean') return undefined;
        copy.include_usage = include;
      }
      if (!copyLoose(options, copy, streamOptionFields)) return undefined;
      out.stream_options = copy;
    }
  }
  for (const field of countFields) {
    if (!(field in request)) continue;
    const value = request[field];
    if (!nullish(value) && !isCount(value)) return undefined;
    out[field] = value;
  }
  for (const field of numberFields) {
    if (!(field in request)) continue;
    const value = request[field];
    if (!nullish(value) && !isNumber(value)) return undefined;
    out[field] = value;
  }
  if ('tools' in request) {
    const given = request.tools;
    const tools = given === undefined ? undefined : quickTools(given);
    if (tools === undefined && given !== undefined) return undefined;
    out.tools = tools;
  }
  if ('tool_choice' in request) out.tool_choice = request.tool_choice;
  if ('user' in request) {
    const { user } = request;
    if (user !== undefined && typeof user !== 'string') return undefined;
    out.user = user;
  }
  return copyLoose(request, out, requestFields) ? (out as unknown as ChatCompletionRequest) : undefined;
}

// The loops and field checks below are written out on purpose: folded into
// helpers taking the reader or the check as a function, the empty
// pipeline's time before the send went from 8.3-8.6 to 10-11 µs (the
// calls through those helpers are what a cold call pays for).
function quickMessages(messages: unknown): unknown[] | undefined {
  if (!Array.isArray(messages) || messages.length === 0) return undefined;
  const out = arrayOf(messages.length);
  for (let index = 0; index < messages.length; index++) {
    const message = quickMessage(messages[index]);
    if (message === undefined) return undefined;
    out[index] = message;
  }
  return out;
}

function quickMessage(message: unknown): Record<string, unknown> | undefined {
  if (!isPlain(message)) return undefined;
  const { role } = message;
  const out: Record<string, unknown> = {};
  out.role = role;
  let known: ReadonlySet<string>;
  switch (role) {
    case 'system':
    case 'developer':
    case 'user': {
      const content = quickContent(message.content);
      if (content === undefined) return undefined;
      out.content = content;
      if (!quickName(message, out)) return undefined;
      known = userFields;
      break;
    }
    case 'assistant': {
      if ('content' in message) {
        const given = message.content;
        const content = nullish(given) ? given : quickContent(given);
        if (content === undefined && given !== undefined) return undefined;
        out.content = content;
      }
      if (!quickName(message, out)) return undefined;
      if ('refusal' in message) {
        const { refusal } = message;
        if (!nullish(refusal) && typeof refusal !== 'string') return undefined;
        out.refusal = refusal;
      }
      if ('tool_calls' in message) {
        const given = message.tool_calls;
        const calls = given === undefined ? undefined : quickToolCalls(given);
        if (calls === undefined && given !== undefined) return undefined;
        out.tool_calls = calls;
      }
      known = assistantFields;
      break;
    }
    case 'tool': {
      const content = quickContent(message.content);
      const id = message.tool_call_id;
      if (content === undefined || typeof id !== 'string') return undefined;
      out.content = content;
      out.tool_call_id = id;
      known = toolMessageFields;
      break;
    }
    default:
      return undefined;
  }
  return copyLoose(message, out, known) ? out : undefined;
}

/** `name: z.optional(z.string())`, copied when present; false when it is not a string. */
function quickName(message: Record<string, unknown>, out: Record<string, unknown>): boolean {
  if (!('name' in message)) return true;
  const { name } = message;
  if (name !== undefined && typeof name !== 'string') return false;
  out.name = name;
  return true;
}

/** A string, or an array of text and image parts, copied; `undefined` for anything else. */
function quickContent(content: unknown): string | unknown[] | undefined {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return undefined;
  const out = arrayOf(content.length);
  for (let index = 0; index < content.length; index++) {
    const part = quickPart(content[index]);
    if (part === undefined) return undefined;
    out[index] = part;
  }
  return out;
}

/** A text part or an image part, copied; `undefined` for any other kind (zod reads those). */
function quickPart(part: unknown): Record<string, unknown> | undefined {
  if (!isPlain(part)) return undefined;
  if (part.type === 'text') {
    if (typeof part.text !== 'string') return undefined;
    const copy: Record<string, unknown> = { type: 'text', text: part.text };
    return copyLoose(part, copy, textPartFields) ? copy : undefined;
  }
  if (part.type !== 'image_url') return undefined;
  const image = part.image_url;
  if (!isPlain(image) || typeof image.url !== 'string') return undefined;
  const imageCopy: Record<string, unknown> = { url: image.url };
  if ('detail' in image) {
    const { detail } = image;
    if (detail !== undefined && detail !== 'auto' && detail !== 'low' && detail !== 'high') return undefined;
    imageCopy.detail = detail;
  }
  const copy: Record<string, unknown> = { type: 'image_url', image_url: imageCopy };
  return copyLoose(image, imageCopy, imageFields) && copyLoose(part, copy, imagePartFields) ? copy : undefined;
}

/** Calls of functions, copied; `undefined` for anything else (a custom tool's call included). */
function quickToolCalls(calls: unknown): unknown[] | undefined {
  if (!Array.isArray(calls)) return undefined;
  const out = arrayOf(calls.length);
  for (let index = 0; index < calls.length; index++) {
    const call: unknown = calls[index];
    if (!isPlain(call) || typeof call.id !== 'string' || call.type !== 'function') return undefined;
    const fn = call.function;
    if (!isPlain(fn) || typeof fn.name !== 'string' || typeof fn.arguments !== 'string') return undefined;
    const fnCopy: Record<string, unknown> = { name: fn.name, arguments: fn.arguments };
    const copy: Record<string, unknown> = { id: call.id, type: 'function', function: fnCopy };
    if (!copyLoose(fn, fnCopy, functionCallFields) || !copyLoose(call, copy, toolCallFields)) return undefined;
    out[index] = copy;
  }
  return out;
}

/** Function tools, copied; `undefined` for anything else (a custom tool included). */
function quickTools(tools: unknown): unknown[] | undefined {
  if (!Array.isArray(tools)) return undefined;
  const out = arrayOf(tools.length);
  for (let index = 0; index < tools.length; index++) {
    const tool: unknown = tools[index];
    if (!isPlain(tool) || tool.type !== 'function') return undefined;
    const fn = tool.function;
    if (!isPlain(fn) || typeof fn.name !== 'string') return undefined;
    const fnCopy: Record<string, unknown> = { name: fn.name };
    if ('description' in fn) {
      const { description } = fn;
      if (description !== undefined && typeof description !== 'string') return undefined;
      fnCopy.description = description;
    }
    if ('parameters' in fn) {
      const given = fn.parameters;
      const parameters = given === undefined ? undefined : quickRecord(given);
      if (parameters === undefined && given !== undefined) return undefined;
      fnCopy.parameters = parameters;
    }
    if ('strict' in fn) {
      const { strict } = fn;
      if (!nullish(strict) && typeof strict !== 'boolean') return undefined;
      fnCopy.strict = strict;
    }
    const copy: Record<string, unknown> = { type: 'function', function: fnCopy };
    if (!copyLoose(fn, fnCopy, functionFields) || !copyLoose(tool, copy, toolDefinitionFields)) return undefined;
    out[index] = copy;
  }
  return out;
}

/** `z.record(z.string(), z.unknown())` of a plain object: its own keys copied, values as they are; `undefined` for anything else. */
function quickRecord(record: unknown): Record<string, unknown> | undefined {
  // zod reads symbol keys too, and rejects them.
  if (!isPlain(record) || Object.getOwnPropertySymbols(record).length > 0) return undefined;
  const copy: Record<string, unknown> = {};
  return copyLoose(record, copy, noFields) ? copy : undefined;
}
