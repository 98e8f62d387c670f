import type { ChatCompletion, ChatCompletionChunk } from './schemas.js';

/*
 * The upstream's own JSON text of the answers a transport checked, kept
 * on the values themselves under a symbol, not enumerable (so a spread or
 * a structured clone of the value has none, and JSON.stringify never sees
 * it), for a caller that forwards answers as bytes, such as a proxy:
 * writing the text it already has costs nothing, serialising the value
 * again costs about a microsecond a chunk. A property, not a WeakMap: a
 * WeakMap entry per chunk cost 0.5-0.8 µs with its garbage collection,
 * the property about a third of that, on every chunk of a stream. Kept
 * only when the transport was asked to (`keepRawJson`), and only for a
 * value its check left exactly as parsed.
 */
const rawText = Symbol('sluice.rawJson');

/**
 * Records that `value` was parsed from `text` and passed the transport's
 * check unchanged; internal to the transport.
 *
 * @param value - the completion or chunk handed on
 * @param text - the JSON text it was parsed from
 */
export function keepRawJson(value: object, text: string): void {
  Object.defineProperty(value, rawText, { value: text });
}

/**
 * The JSON text a completion or a stream chunk was parsed from, as the
 * upstream sent it (its spacing and key order), when the transport was
 * made with `keepRawJson: true` and its check changed nothing in the
 * value (no field sanitised); otherwise undefined, and so for any value
 * the transport did not make (a middleware's, a cache's).
 *
 * The text is the value as the transport handed it on. A middleware that
 * changes an answer in place afterwards leaves the text as it was, so use
 * it only where nothing between the transport and you rewrites answers in
 * place (replacing `ctx.response` or the chunks is safe: a new value has
 * no text).
 *
 * @param value - a completion (`ctx.response`) or a chunk of `ctx.chunks`
 * @returns the JSON text, or undefined
 * @example
 * ```ts
 * const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey, keepRawJson: true }) });
 * const ctx = await llm.run(request);
 * response.end(rawJson(ctx.response!) ?? JSON.stringify(ctx.response));
 * ```
 */
export function rawJson(value: ChatCompletion | ChatCompletionChunk): string | undefined {
  return (value as { [rawText]?: string })[rawText];
}
