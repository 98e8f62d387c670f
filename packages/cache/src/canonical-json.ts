import type { ChatCompletionRequest } from '@sluice/core';

/**
 * The request as canonical JSON: object keys sorted at every depth (so two
 * requests that differ only in key order are one), arrays in order (the
 * order of messages and tools is part of the prompt), `undefined` dropped
 * as JSON drops it, and top-level `null`s dropped too (`temperature: null`
 * asks for the default, as leaving it out does). Fields in `ignore` are
 * left out; internal.
 *
 * Built as a list of pieces joined once: the request's own strings go in
 * as they are (quoted by pieces of their own when they need no escaping),
 * so the only new string of any size is the result. Concatenating instead
 * makes a string for every `+`, and JSON.stringify a buffer for every
 * value: three times the garbage, on every cacheable call.
 *
 * @param request - the request as it will be sent
 * @param ignore - top-level fields that do not change the answer
 * @param origin - put before the JSON with a newline, in the same string (what the key hashes)
 * @example
 * ```ts
 * canonicalRequest({ model: 'm', temperature: 0, messages }, new Set(['stream'])); // '{"messages":[…],"model":"m","temperature":0}'
 * ```
 */
export function canonicalRequest(request: ChatCompletionRequest, ignore: ReadonlySet<string>, origin?: string): string {
  // A getter on the request that builds a key itself gets pieces of its own.
  const pieces = spare ?? new Pieces();
  spare = undefined;
  try {
    if (origin !== undefined) {
      pieces.push(origin);
      pieces.push('\n');
    }
    // Every field counts, the undeclared ones a provider takes included.
    const record = request as unknown as Record<string, unknown>;
    const fields = sortedKeys(record);
    let first = true;
    pieces.push('{');
    for (let index = 0; index < fields.length; index++) {
      const field = fields[index] as string;
      const value = record[field];
      if (value === undefined || value === null || ignore.has(field) || !isJson(value)) continue;
      if (!first) pieces.push(',');
      first = false;
      pieces.push(encodeKey(field));
      pieces.push(':');
      writeValue(pieces, value);
    }
    pieces.push('}');
    return pieces.join();
  } finally {
    pieces.clear();
    spare = pieces;
  }
}

/** Pieces of text, joined once; kept between calls so that building a key allocates no array. */
class Pieces {
  private readonly list: string[] = [];
  private length = 0;
  private used = 0;

  push(text: string): void {
    this.list[this.length++] = text;
  }

  join(): string {
    const list = this.list;
    // Pieces past this call's end are left from a longer one: blanked, not cut, since cutting frees the array.
    if (this.used > this.length) list.fill('', this.length, this.used);
    this.used = this.length;
    return list.join('');
  }

  clear(): void {
    // Every piece at `used` or past it is blank; a call cut short by a throw wrote some it never joined.
    if (this.length > this.used) this.used = this.length;
    // After an unusually long request, let the array go rather than blank a long tail on every call.
    if (this.list.length > 4096) {
      this.list.length = 0;
      this.used = 0;
    }
    this.length = 0;
  }
}

let spare: Pieces | undefined = new Pieces();

/** What JSON keeps of a value: functions, symbols and undefined vanish from objects (and are null in arrays). */
function isJson(value: unknown): boolean {
  const type = typeof value;
  return type !== 'function' && type !== 'symbol' && type !== 'undefined';
}

function writeValue(pieces: Pieces, value: unknown): void {
  switch (typeof value) {
    case 'string':
      writeString(pieces, value);
      return;
    case 'number':
      // As JSON writes numbers: a NaN or an infinity becomes null.
      pieces.push(Number.isFinite(value) ? String(value) : 'null');
      return;
    case 'boolean':
      pieces.push(value ? 'true' : 'false');
      return;
    case 'object':
      if (value === null) pieces.push('null');
      else if (Array.isArray(value)) writeArray(pieces, value);
      else writeObject(pieces, value as Record<string, unknown>);
      return;
    case 'bigint':
      // JSON refuses it, and so does the key: this throws.
      pieces.push(JSON.stringify(value));
      return;
    default:
      pieces.push('null');
  }
}

function writeArray(pieces: Pieces, items: readonly unknown[]): void {
  pieces.push('[');
  for (let index = 0; index < items.length; index++) {
    if (index > 0) pieces.push(',');
    const item = items[index];
    if (isJson(item)) writeValue(pieces, item);
    else pieces.push('null');
  }
  pieces.push(']');
}

function writeObject(pieces: Pieces, record: Record<string, unknown>): void {
  const keys = sortedKeys(record);
  let first = true;
  pieces.push('{');
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index] as string;
    const value = record[key];
    if (!isJson(value)) continue;
    if (!first) pieces.push(',');
    first = false;
    pieces.push(encodeKey(key));
    pieces.push(':');
    writeValue(pieces, value);
  }
  pieces.push('}');
}

// What JSON.stringify escapes: quotes, backslashes, control characters, and
// (well-formed JSON.stringify) lone surrogates; a string with any surrogate
// at all is simply left to JSON.stringify.
const needsEscape = /["\\\u0000-\u001f\ud800-\udfff]/;

function writeString(pieces: Pieces, text: string): void {
  if (needsEscape.test(text)) {
    pieces.push(JSON.stringify(text));
    return;
  }
  pieces.push('"');
  pieces.push(text);
  pieces.push('"');
}

/**
 * The object's own keys in code-unit order, as `sort()` orders them. A
 * request's objects have a handful of keys (a message two or three), for
 * which an insertion sort in place costs a fraction of a call to `sort`
 * (which also makes a scratch array).
 */
function sortedKeys(record: Record<string, unknown>): string[] {
  const keys = Object.keys(record);
  if (keys.length > 12) return keys.sort();
  for (let index = 1; index < keys.length; index++) {
    const key = keys[index] as string;
    let at = index - 1;
    while (at >= 0 && (keys[at] as string) > key) {
      keys[at + 1] = keys[at] as string;
      at--;
    }
    keys[at + 1] = key;
  }
  return keys;
}

// A request's keys come from a small vocabulary (model, messages, role,
// content…), so each is JSON-encoded once; the map stops growing at a bound
// so that keys a caller makes up (a tool's JSON schema) cannot fill memory.
const encodedKeys = new Map<string, string>();
const maxEncodedKeys = 512;

function encodeKey(key: string): string {
  let encoded = encodedKeys.get(key);
  if (encoded === undefined) {
    encoded = JSON.stringify(key);
    if (encodedKeys.size < maxEncodedKeys) encodedKeys.set(key, encoded);
  }
  return encoded;
}
