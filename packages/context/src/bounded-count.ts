/*
 * Bounded counting. Every BPE library measured (js-tiktoken, gpt-tokenizer,
 * tiktoken's WASM build) is quadratic or worse in the length of one
 * pre-tokenizer piece, and a piece is as long as a run the pattern cannot
 * split: 100,000 repeated `a`, a Chinese paragraph without punctuation, a
 * base64 blob without digits. So a piece longer than `pieceLimit` UTF-16
 * units is either handed to `countLong` (the default tokenizer cuts it
 * where no token spans, exactly, or else merges it in overlapping windows,
 * flagged approximate; see `encoding-tokenizer.ts`) or cut into segments of
 * `segmentLength` units, each counted alone, every cut adding
 * `boundaryMargin` tokens, flagged approximate (the adapters). Ordinary
 * text never has such pieces (a word, a number, a
 * clause between two punctuation marks) and keeps its exact count; the work
 * per piece is bounded, so counting is linear in the text.
 */

import type { TokenCount } from './tokenizer.js';

/** Limits of the bounded splitter, in UTF-16 units. */
export interface BoundedLimits {
  /** A piece longer than this is cut into segments. */
  pieceLimit: number;
  /** The length of each segment of a cut piece. */
  segmentLength: number;
}

/** Tokens added per cut, so a cut piece errs high (see the README's error bound). */
export const boundaryMargin = 1;

/**
 * The limits of the default tokenizer, whose merge is O(n log n) per piece:
 * a piece is merged whole up to 2,048 units (6,144 bytes), a longer one in
 * windows of that length (see `encoding-tokenizer.ts`).
 */
export const encoderLimits: BoundedLimits = { pieceLimit: 2048, segmentLength: 2048 };

/** The limits for adapters, whose merge is quadratic per piece. */
export const adapterLimits: BoundedLimits = { pieceLimit: 256, segmentLength: 128 };

/**
 * Counts `text` piece by piece with `countRun`, cutting over-long pieces.
 *
 * @param text - the text
 * @param pattern - the encoding's pre-tokenizer with the `g`, `u` and `y` flags ({@link piecePattern}):
 *   sticky, so each piece is found with `test()` where the last ended, and no match array is built
 * @param countRun - counts `text[from, to)`: an exact piece, a run of them, or a segment
 * @param options - `coalesce` hands consecutive ordinary pieces to `countRun` in one run
 *   (for backends that pre-tokenize themselves); `limits` override the default ones;
 *   `countLong` counts a piece longer than `pieceLimit` instead of cutting it into segments,
 *   and says whether its count is approximate
 * @example
 * ```ts
 * countBounded(text, /\S+|\s+/guy, (from, to) => to - from, { limits: encoderLimits });
 * ```
 */
export function countBounded(
  text: string,
  pattern: RegExp,
  countRun: (from: number, to: number) => number,
  options: { coalesce?: boolean; limits: BoundedLimits; countLong?: (from: number, to: number) => TokenCount },
): TokenCount {
  const { pieceLimit, segmentLength } = options.limits;
  const coalesce = options.coalesce ?? false;
  let tokens = 0;
  let cut = false;
  let spanStart = 0;
  let from = 0;
  pattern.lastIndex = 0;
  while (from < text.length) {
    if (!pattern.test(text)) {
      // The encodings' patterns match every character; a pattern with gaps skips them, as tiktoken does.
      from = nextMatch(text, pattern, from);
      if (from < 0) break;
      pattern.lastIndex = from;
      continue;
    }
    const to = pattern.lastIndex;
    if (to === from) break;
    if (to - from <= pieceLimit) {
      if (!coalesce) tokens += countRun(from, to);
      from = to;
      continue;
    }
    if (coalesce && spanStart < from) tokens += countRun(spanStart, from);
    if (options.countLong) {
      const long = options.countLong(from, to);
      tokens += long.tokens;
      cut ||= long.approximate;
    } else {
      cut = true;
      for (let at = from; at < to; ) {
        const end = segmentEnd(text, at, Math.min(to, at + segmentLength));
        tokens += countRun(at, end);
        if (end < to) tokens += boundaryMargin;
        at = end;
      }
    }
    spanStart = to;
    from = to;
  }
  if (coalesce && spanStart < text.length) tokens += countRun(spanStart, text.length);
  return { tokens, approximate: cut };
}

/** Where the next match of `pattern` at or after `from` starts, or -1. */
function nextMatch(text: string, pattern: RegExp, from: number): number {
  const search = new RegExp(pattern.source, pattern.flags.replace('y', ''));
  search.lastIndex = from;
  return search.exec(text)?.index ?? -1;
}

/**
 * `end`, or one less when a cut there would split a surrogate pair; internal.
 *
 * @param text - the text
 * @param from - where the segment starts
 * @param end - where it would end
 */
export function segmentEnd(text: string, from: number, end: number): number {
  if (end >= text.length || end - from < 2) return end;
  const before = text.charCodeAt(end - 1);
  return before >= 0xd800 && before <= 0xdbff ? end - 1 : end;
}
