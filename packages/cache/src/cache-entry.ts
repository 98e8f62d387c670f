import { type ChatCompletion, type ChatCompletionChunk, rawJson, type Usage } from '@sluice/core';
import { writeJson } from './json-writer.js';
import type { Utf8Writer } from './utf8-writer.js';

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
 * Writes a completion or a chunk as it is stored: with `raw`, the
 * upstream's own text where the transport kept it (nothing to serialise),
 * else the value as JSON; internal.
 *
 * @param writer - where to write it
 * @param value - the answer, as the call inside the cache left it
 * @param raw - the cache's `rawJson` option
 * @throws what JSON.stringify throws for the value (a BigInt)
 */
export function writeAnswer(writer: Utf8Writer, value: ChatCompletion | ChatCompletionChunk, raw: boolean): void {
  const text = raw ? rawJson(value) : undefined;
  if (text !== undefined) writer.text(text, false);
  else writeJson(writer, value);
}

/**
 * A completion entry, serialised once into one string (what the storage
 * keeps, and what identical calls in flight read their copy from); internal.
 *
 * @param writer - an empty writer to build it in
 * @param response - the completion
 * @param usage - its usage, if it had one
 * @param raw - the cache's `rawJson` option
 * @returns the entry and its exact UTF-8 bytes
 * @throws what JSON.stringify throws for the answer (a BigInt)
 */
export function completionEntry(
  writer: Utf8Writer, response: ChatCompletion, usage: Usage | undefined, storedAt: number, ttlMs: number, raw: boolean,
): { entry: string; bytes: number } {
  writer.text(`{"v":1,"storedAt":${storedAt},"expiresAt":${storedAt + ttlMs},"usage":`, false);
  writeJson(writer, usage ?? null);
  writer.text(',"response":', false);
  writeAnswer(writer, response, raw);
  writer.byte(0x7d);
  return { entry: writer.decode(), bytes: writer.size };
}

/**
 * A stream entry, from the chunks written one by one as they arrived,
 * separated by commas (nothing is serialised twice); internal.
 *
 * @param writer - an empty writer to build it in
 * @param chunks - the chunks' JSON, comma-separated
 * @param usage - the stream's usage, if it had one
 * @returns the entry and its exact UTF-8 bytes
 */
export function streamEntry(writer: Utf8Writer, chunks: Utf8Writer, usage: Usage | undefined, storedAt: number, ttlMs: number): { entry: string; bytes: number } {
  writer.text(`{"v":1,"storedAt":${storedAt},"expiresAt":${storedAt + ttlMs},"usage":`, false);
  writeJson(writer, usage ?? null);
  writer.text(',"chunks":[', false);
  writer.append(chunks);
  writer.text(']}', false);
  return { entry: writer.decode(), bytes: writer.size };
}

/**
 * Reads an entry back: `undefined` for one that expired, is of the other
 * kind, or is not an entry at all (a damaged or foreign value is a miss,
 * never a crash); internal.
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
  if (stream ? !Array.isArray(entry.chunks) : typeof entry.response !== 'object' || entry.response === null) return undefined;
  return entry;
}

/**
 * Replays stored chunks as a stream: the same chunks, the same boundaries,
 * no waiting; internal.
 *
 * @param chunks - the entry's chunks (fresh objects, the caller's to keep)
 * @param onEnd - runs once, before the end is reported (sets the call's usage)
 */
export function replay(chunks: readonly ChatCompletionChunk[], onEnd: () => void): AsyncIterableIterator<ChatCompletionChunk> {
  let index = 0;
  let ended = false;
  const end = () => {
    if (!ended) onEnd();
    ended = true;
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      if (!ended && index < chunks.length) return { done: false, value: chunks[index++] as ChatCompletionChunk };
      end();
      return { done: true, value: undefined };
    },
    async return() {
      ended = true;
      return { done: true, value: undefined };
    },
  };
}
