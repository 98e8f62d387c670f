import type { ChatCompletionRequest } from '@sluice/core';
import { sha256 } from './sha256.js';

/**
 * The request as canonical JSON: object keys sorted at every depth (so two
 * requests that differ only in key order are one), arrays in order (the
 * order of messages and tools is part of the prompt), `undefined` dropped
 * as JSON drops it, and top-level `null`s dropped too (`temperature: null`
 * asks for the default, as leaving it out does). Fields in `ignore` are
 * left out; internal.
 *
 * @param request - the request as it will be sent
 * @param ignore - top-level fields that do not change the answer
 * @example
 * ```ts
 * canonicalRequest({ model: 'm', temperature: 0, messages }, new Set(['stream'])); // '{"messages":[…],"model":"m","temperature":0}'
 * ```
 */
export function canonicalRequest(request: ChatCompletionRequest, ignore: ReadonlySet<string>): string {
  // Every field counts, the undeclared ones a provider takes included.
  const record = request as unknown as Record<string, unknown>;
  const fields = sortedKeys(record);
  let json = '{';
  for (let index = 0; index < fields.length; index++) {
    const field = fields[index] as string;
    const value = record[field];
    if (value === undefined || value === null || ignore.has(field)) continue;
    const encoded = canonicalJson(value);
    if (encoded === undefined) continue;
    json += (json.length > 1 ? ',' : '') + encodeKey(field) + ':' + encoded;
  }
  return json + '}';
}

// Hand-rolled rather than map/join and a JSON.stringify per value: this runs
// on every cacheable call, and the request's strings are most of its bytes.
function canonicalJson(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      // As JSON writes numbers: a NaN or an infinity becomes null.
      return Number.isFinite(value) ? String(value) : 'null';
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      if (value === null) return 'null';
      return Array.isArray(value) ? canonicalArray(value) : canonicalObject(value as Record<string, unknown>);
    case 'bigint':
      // JSON refuses it; so does the key.
      return JSON.stringify(value);
    default:
      // Functions, symbols and undefined vanish from JSON.
      return undefined;
  }
}

function canonicalArray(items: readonly unknown[]): string {
  let json = '[';
  for (let index = 0; index < items.length; index++) {
    if (index > 0) json += ',';
    json += canonicalJson(items[index]) ?? 'null';
  }
  return json + ']';
}

function canonicalObject(record: Record<string, unknown>): string {
  const keys = sortedKeys(record);
  let json = '{';
  for (let index = 0; index < keys.length; index++) {
    const key = keys[index] as string;
    const encoded = canonicalJson(record[key]);
    if (encoded === undefined) continue;
    if (json.length > 1) json += ',';
    json += encodeKey(key) + ':' + encoded;
  }
  return json + '}';
}

/**
 * The object's own keys in code-unit order, as `sort()` orders them. A
 * request's objects have a handful of keys (a message two or three), for
 * which an insertion sort in place costs a fraction of a call to `sort`.
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

/**
 * The cache key of a request: its kind (a stream and a completion are
 * stored apart, so each replays as what it was) and the SHA-256 of its
 * upstream and canonical form. A cryptographic hash, because an
 * exact-match cache that a crafted collision could poison would serve one
 * tenant's answer to another; internal.
 *
 * @param request - the request as it will be sent
 * @param stream - whether the call is a stream
 * @param origin - the upstream it goes to (another upstream may answer otherwise)
 * @param ignore - top-level fields left out
 * @example
 * ```ts
 * const key = requestKey(ctx.request, ctx.stream, ctx.transport.origin, ignore); // 'stream:3fa9…'
 * ```
 */
export function requestKey(request: ChatCompletionRequest, stream: boolean, origin: string, ignore: ReadonlySet<string>): string {
  return `${stream ? 'stream' : 'completion'}:${sha256(`${origin}\n${canonicalRequest(request, ignore)}`)}`;
}
