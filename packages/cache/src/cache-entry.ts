import { type ChatCompletion, type ChatCompletionChunk, rawJson, type Usage } from '@sluice/core';
import { type EndAware, isChunk, isCompletion, type ReadingAware, sanitiseUsage, streamEnd, streamReading } from '@sluice/core/kit';
import { extraUtf8Bytes } from './utf8-bytes.js';

/** A stored answer, as plain JSON (so any backend can keep it); internal. */
export interface CacheEntry {
  v: 1;
  /** When it was stored and when it stops being served, in the cache's clock time. */
  storedAt: number;
  expiresAt: number;
  /** The usage the answer cost when it was bought: what a hit saves. */
  usage: Usage | null;
  /** The completion, for a non-stream entry. */
  response?: ChatCompletion;
  /** The chunks in the order and with the boundaries they arrived with, for a stream entry. */
  chunks?: ChatCompletionChunk[];
}

/**
 * The JSON of a completion or a chunk as it is stored: with `raw`, the
 * upstream's own text where the transport kept it (nothing to serialise),
 * else the value serialised; internal.
 *
 * @param value - the answer, as the call inside the cache left it
 * @param raw - the cache's `rawJson` option
 */
export function answerJson(value: ChatCompletion | ChatCompletionChunk, raw: boolean): string {
  return (raw ? rawJson(value) : undefined) ?? JSON.stringify(value);
}

/**
 * Serialises a completion entry; internal.
 *
 * @param response - the completion, already serialised (so a caller mutating its copy cannot reach the cache)
 * @param usage - its usage, serialised, if it had one
 */
export function completionEntry(response: string, usage: string | undefined, storedAt: number, ttlMs: number): string {
  return `{"v":1,"storedAt":${storedAt},"expiresAt":${storedAt + ttlMs},"usage":${usage ?? 'null'},"response":${response}}`;
}

/**
 * Serialises a stream entry from chunks serialised one by one as they
 * arrived, already joined with commas (nothing is stringified twice); internal.
 *
 * @param chunks - the chunks' JSON, comma-separated
 * @param usage - the stream's usage, serialised (`null` for none)
 */
export function streamEntry(chunks: string, usage: string, storedAt: number, ttlMs: number): string {
  return `{"v":1,"storedAt":${storedAt},"expiresAt":${storedAt + ttlMs},"usage":${usage},"chunks":[${chunks}]}`;
}

/**
 * The UTF-8 bytes of a stream entry from its parts: everything but the
 * chunks and the usage is ASCII, so the entry (a few KiB) is never copied
 * into one string just to be measured; the chunks, joined, already are one; internal.
 *
 * @param entry - the entry
 * @param chunks - the chunks' JSON, joined
 * @param usage - the usage's JSON
 */
export function streamEntryBytes(entry: string, chunks: string, usage: string): number {
  return entry.length + extraUtf8Bytes(chunks) + extraUtf8Bytes(usage);
}

/**
 * Reads an entry back: `undefined` for one that expired, is of the other
 * kind, or is not an entry at all (a damaged or foreign value is a miss,
 * never a crash). Its answer is checked by the rules the transport checks
 * an upstream's with, and its usage as the transport counts one: a shared
 * store can hold what another program wrote; internal.
 *
 * @param text - what the storage returned
 * @param stream - the kind the call needs
 * @param now - the cache's clock time
 */
export function parseEntry(text: string, stream: boolean, now: number): CacheEntry | undefined {
  let entry: CacheEntry;
  try {
    entry = JSON.parse(text) as CacheEntry;
  } catch {
    return undefined;
  }
  if (entry === null || typeof entry !== 'object' || entry.v !== 1 || !(entry.expiresAt > now)) return undefined;
  if (typeof entry.storedAt !== 'number' || !Number.isFinite(entry.storedAt)) return undefined;
  if (entry.usage !== null && entry.usage !== undefined && sanitiseUsage(entry.usage) === undefined) return undefined;
  if (!stream) return isCompletion(entry.response) ? entry : undefined;
  return Array.isArray(entry.chunks) && entry.chunks.every(isChunk) ? entry : undefined;
}

/**
 * Replays stored chunks as a stream: the same chunks, the same boundaries,
 * no waiting; internal.
 *
 * @param chunks - the entry's chunks (fresh objects, the caller's to keep)
 * @param onEnd - runs once, before the end is reported (sets the call's usage)
 */
export function replay(chunks: readonly ChatCompletionChunk[], onEnd: () => void): AsyncIterableIterator<ChatCompletionChunk> & EndAware & ReadingAware {
  let index = 0;
  let ended = false;
  /** The pipeline's, told once when the replay is over (see streamEnd): its call stays in flight until then. */
  let told: (() => void) | undefined;
  const tell = () => {
    const callback = told;
    told = undefined;
    callback?.();
  };
  const end = () => {
    if (!ended) onEnd();
    ended = true;
    tell();
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    // Each next() takes the next chunk at once, so one asked before the last landed needs no wait (see core's LazyStream).
    [streamReading]: false,
    [streamEnd](callback: () => void) {
      if (ended || told !== undefined) return false;
      told = callback;
      return true;
    },
    async next() {
      if (!ended && index < chunks.length) return { done: false, value: chunks[index++] as ChatCompletionChunk };
      end();
      return { done: true, value: undefined };
    },
    async return() {
      ended = true;
      tell();
      return { done: true, value: undefined };
    },
  };
}
