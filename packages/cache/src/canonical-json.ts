import type { ChatCompletionRequest } from '@sluice/core';
import { Utf8Writer } from './utf8-writer.js';

/**
 * The request in canonical JSON, as the UTF-8 bytes the key hashes: object
 * keys sorted at every depth (so two requests that differ only in key
 * order are one), arrays in order (the order of messages and tools is part
 * of the prompt), `undefined` dropped as JSON drops it, and top-level
 * `null`s dropped too (`temperature: null` asks for the default, as leaving
 * it out does). Fields in `ignore` are left out; internal.
 *
 * Written straight into a buffer kept between calls, so building a key
 * makes no string at all: measured, building the JSON as pieces joined into
 * a string and hashing that made three times the garbage (about 1.4 KB a
 * key against 0.4) and took a third more CPU; on a miss over the network
 * that garbage costs again, in the scavenges of everything in flight. The
 * bytes are JSON.stringify's own, escapes and lone surrogates included.
 *
 * @param request - the request as it will be sent
 * @param ignore - top-level fields that do not change the answer
 * @param origin - written before the JSON with a newline (what the key hashes)
 * @returns a view of the bytes, valid until the next call
 */
export function canonicalBytes(request: ChatCompletionRequest, ignore: ReadonlySet<string>, origin?: string): Uint8Array {
  // A getter on the request that builds a key itself gets a writer of its own.
  const writer = spare ?? new Utf8Writer();
  spare = undefined;
  try {
    writer.reset();
    if (origin !== undefined) {
      writer.text(origin, false);
      writer.byte(newline);
    }
    // Every field counts, the undeclared ones a provider takes included.
    const record = request as unknown as Record<string, unknown>;
    const fields = sortedKeys(record);
    let first = true;
    writer.byte(openBrace);
    for (let index = 0; index < fields.length; index++) {
      const field = fields[index] as string;
      const value = jsonOf(record[field], field);
      if (value === undefined || value === null || ignore.has(field) || !isJson(value)) continue;
      if (!first) writer.byte(comma);
      first = false;
      writer.text(field, true);
      writer.byte(colon);
      writeValue(writer, value);
    }
    writer.byte(closeBrace);
    return writer.view();
  } finally {
    spare = writer;
  }
}

const decoder = new TextDecoder();

/**
 * {@link canonicalBytes} as a string (to read or compare it); internal.
 *
 * @param request - the request as it will be sent
 * @param ignore - top-level fields that do not change the answer
 * @param origin - put before the JSON with a newline
 * @example
 * ```ts
 * canonicalRequest({ model: 'm', temperature: 0, messages }, new Set(['stream'])); // '{"messages":[…],"model":"m","temperature":0}'
 * ```
 */
export function canonicalRequest(request: ChatCompletionRequest, ignore: ReadonlySet<string>, origin?: string): string {
  return decoder.decode(canonicalBytes(request, ignore, origin));
}

let spare: Utf8Writer | undefined = new Utf8Writer();

const newline = 0x0a;
const comma = 0x2c;
const colon = 0x3a;
const openBrace = 0x7b;
const closeBrace = 0x7d;
const openBracket = 0x5b;
const closeBracket = 0x5d;

/**
 * The value JSON.stringify writes for `value` under `key` (an array's index, as a string): what its
 * `toJSON` returns (a Date's ISO string, a URL's href), and a boxed
 * primitive unboxed. Two requests that would be sent with different dates
 * must not share a key.
 */
function jsonOf(value: unknown, key: string | number): unknown {
  if ((typeof value !== 'object' || value === null) && typeof value !== 'bigint') return value;
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  const json: unknown = typeof toJSON === 'function' ? toJSON.call(value, String(key)) : value;
  if (typeof json !== 'object' || json === null) return json;
  if (json instanceof Number) return Number(json);
  if (json instanceof String) return String(json);
  if (json instanceof Boolean) return json.valueOf();
  return json;
}

/** What JSON keeps of a value: functions, symbols and undefined vanish from objects (and are null in arrays). */
function isJson(value: unknown): boolean {
  const type = typeof value;
  return type !== 'function' && type !== 'symbol' && type !== 'undefined';
}

function writeValue(writer: Utf8Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      writer.text(value, true);
      return;
    case 'number':
      // As JSON writes numbers: a NaN or an infinity becomes null.
      writer.text(Number.isFinite(value) ? String(value) : 'null', false);
      return;
    case 'boolean':
      writer.text(value ? 'true' : 'false', false);
      return;
    case 'object':
      if (value === null) writer.text('null', false);
      else if (Array.isArray(value)) writeArray(writer, value);
      else writeObject(writer, value as Record<string, unknown>);
      return;
    case 'bigint':
      // JSON refuses it, and so does the key: this throws.
      writer.text(JSON.stringify(value), false);
      return;
    default:
      writer.text('null', false);
  }
}

function writeArray(writer: Utf8Writer, items: readonly unknown[]): void {
  writer.byte(openBracket);
  for (let index = 0; index < items.length; index++) {
    if (index > 0) writer.byte(comma);
    const item = jsonOf(items[index], index);
    if (isJson(item)) writeValue(writer, item);
    else writer.text('null', false);
  }
  writer.byte(closeBracket);
}

function writeObject(writer: Utf8Writer, record: Record<string, unknown>): void {
  const keys = sortedKeys(record);
  let first = true;
  writer.byte(openBrace);
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index] as string;
    const value = jsonOf(record[key], key);
    if (!isJson(value)) continue;
    if (!first) writer.byte(comma);
    first = false;
    writer.text(key, true);
    writer.byte(colon);
    writeValue(writer, value);
  }
  writer.byte(closeBrace);
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
