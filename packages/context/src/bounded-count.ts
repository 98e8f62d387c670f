/*
 * Bounded counting. Every BPE implementation measured (js-tiktoken,
 * gpt-tokenizer, tiktoken's WASM build) is quadratic or worse in the length
 * of one pre-tokenizer piece, and a piece is as long as a run the pattern
 * cannot split: 100,000 repeated `a`, a Chinese paragraph without
 * punctuation, a base64 blob without digits. So a piece longer than
 * `pieceLimit` UTF-16 units is cut into segments of `segmentLength` units,
 * each counted alone, and every cut adds `boundaryMargin` tokens. The result
 * is then flagged approximate. Ordinary text never has such pieces (a word,
 * a number, a clause between two punctuation marks) and keeps its exact
 * count; the work per piece is bounded, so counting is linear in the text.
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

/** The limits of the default tokenizer, whose merge is O(n log n) per piece. */
export const encoderLimits: BoundedLimits = { pieceLimit: 1024, segmentLength: 256 };

/** The limits for adapters, whose merge is quadratic per piece. */
export const adapterLimits: BoundedLimits = { pieceLimit: 256, segmentLength: 128 };

/**
 * Counts `text` piece by piece with `countRun`, cutting over-long pieces.
 *
 * @param text - the text
 * @param pattern - the encoding's pre-tokenizer, with the `g` and `u` flags
 * @param countRun - counts `text[from, to)`: an exact piece, a run of them, or a segment
 * @param options - `coalesce` hands consecutive ordinary pieces to `countRun` in one run
 *   (for backends that pre-tokenize themselves); `limits` override the default ones
 * @example
 * ```ts
 * countBounded(text, /\S+|\s+/gu, (from, to) => to - from, { limits: encoderLimits });
 * ```
 */
export function countBounded(
  text: string,
  pattern: RegExp,
  countRun: (from: number, to: number) => number,
  options: { coalesce?: boolean; limits: BoundedLimits },
): TokenCount {
  const { pieceLimit, segmentLength } = options.limits;
  const coalesce = options.coalesce ?? false;
  let tokens = 0;
  let cut = false;
  let spanStart = 0;
  pattern.lastIndex = 0;
  for (let match = pattern.exec(text); match !== null; match = pattern.exec(text)) {
    const from = match.index;
    const to = from + match[0].length;
    if (to - from <= pieceLimit) {
      if (!coalesce) tokens += countRun(from, to);
      continue;
    }
    if (coalesce && spanStart < from) tokens += countRun(spanStart, from);
    cut = true;
    let at = from;
    while (at < to) {
      const end = segmentEnd(text, at, Math.min(to, at + segmentLength));
      tokens += countRun(at, end);
      if (end < to) tokens += boundaryMargin;
      at = end;
    }
    spanStart = to;
  }
  if (coalesce && spanStart < text.length) tokens += countRun(spanStart, text.length);
  return { tokens, approximate: cut };
}

/** Moves a cut back by one when it would split a surrogate pair. */
function segmentEnd(text: string, from: number, end: number): number {
  if (end >= text.length || end - from < 2) return end;
  const before = text.charCodeAt(end - 1);
  return before >= 0xd800 && before <= 0xdbff ? end - 1 : end;
}
