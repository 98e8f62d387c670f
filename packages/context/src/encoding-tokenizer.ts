import { SluiceError } from '@sluice/core';
import { boundaryMargin, countBounded, encoderLimits, segmentEnd } from './bounded-count.js';
import {
  BytePairEncoder,
  charMayEnd,
  charMayStart,
  charTokens,
  charWide,
  maxPieceBytes,
  type RankFile,
} from './byte-pair-encoder.js';
import type { Encoding } from './encodings.js';
import { narrowPattern } from './narrow-pattern.js';
import type { TokenCount, Tokenizer } from './tokenizer.js';
import { encodeUtf8Into } from './utf8.js';
import { warmUpTexts } from './warm-up.js';

/*
 * Rank files are loaded on the first exact count, never at import: the
 * o200k_base file is 2.3 MB of JavaScript. `count` is synchronous, so the
 * first count of an encoding loads it synchronously and is exact, never a
 * silent estimate; `loadTokenizer()` does the same work ahead of time
 * through a dynamic `import()` that bundlers follow, e.g. at startup.
 *
 * The synchronous load needs a `require`, reached through
 * `process.getBuiltinModule` (Node 20.16+, Bun) rather than an import of
 * `node:module`, so bundles for the web and workers stay free of Node
 * built-ins. Where there is none (a browser, a worker, a bundle without
 * node_modules), a count before `loadTokenizer()` throws
 * TOKENIZER_NOT_LOADED instead of estimating.
 */

const encoders = new Map<Encoding, BytePairEncoder>();
const loading = new Map<Encoding, Promise<BytePairEncoder>>();
const warmed = new Set<Encoding>();
let requireRanks: ((id: string) => unknown) | null | undefined;

function rankFileOf(module: RankFile | { default: RankFile }): RankFile {
  return 'default' in module ? module.default : module;
}

function loadSync(encoding: Encoding): BytePairEncoder {
  let encoder = encoders.get(encoding);
  if (!encoder) {
    requireRanks ??= nodeRequire();
    let rankFile: RankFile | { default: RankFile } | undefined;
    try {
      rankFile = requireRanks?.(`js-tiktoken/ranks/${encoding}`) as RankFile | { default: RankFile } | undefined;
    } catch {
      rankFile = undefined;
    }
    if (!rankFile) {
      throw new SluiceError(
        'TOKENIZER_NOT_LOADED',
        `the ${encoding} rank file cannot be loaded synchronously here: await loadTokenizer(model) before counting`,
        { final: true },
      );
    }
    encoder = BytePairEncoder.fromRankFile(rankFileOf(rankFile));
    encoders.set(encoding, encoder);
  }
  return encoder;
}

/** A `require` beside this module, where the runtime has one; `null` where it has none. */
function nodeRequire(): ((id: string) => unknown) | null {
  const runtime = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const module = runtime?.getBuiltinModule?.('node:module') as
    | { createRequire(url: string): (id: string) => unknown }
    | undefined;
  if (!module) return null;
  try {
    return module.createRequire(import.meta.url);
  } catch {
    return null;
  }
}

function loadAsync(encoding: Encoding): Promise<BytePairEncoder> {
  const ready = encoders.get(encoding);
  if (ready) return Promise.resolve(ready);
  let pending = loading.get(encoding);
  if (!pending) {
    // Literal specifiers, so bundlers can see and split them.
    const rankFile =
      encoding === 'o200k_base' ? import('js-tiktoken/ranks/o200k_base') : import('js-tiktoken/ranks/cl100k_base');
    pending = rankFile.then(
      (module) => {
        const encoder = encoders.get(encoding) ?? BytePairEncoder.fromRankFile(rankFileOf(module));
        // Ahead of time, as asked: the first long run of CJK or emoji then costs no more than the next.
        encoder.crossingPairs();
        encoders.set(encoding, encoder);
        return encoder;
      },
      (error: unknown) => {
        loading.delete(encoding);
        throw error;
      },
    );
    loading.set(encoding, pending);
  }
  return pending;
}

// Room for the UTF-8 bytes of the longest piece counted whole, or of one window.
const scratch = new Uint8Array(maxPieceBytes);

/*
 * A run longer than `pieceLimit` is cut where no token spans the boundary
 * between two wide characters (see `crossing-pairs.ts`), character by
 * character, and each part is counted alone: exactly, as the whole merge
 * would count it. Nearly every boundary of CJK or emoji text is such a
 * place, so those runs count exactly, unflagged, at the cost of a lookup
 * per character. Where `segmentLength` units pass with no such place (a run
 * of ASCII letters, spaces, or a script of 2-byte characters), one window
 * of that length is merged whole, and only the tokens that start at least
 * `windowOverlap` bytes before its end are counted; cutting resumes where
 * the first uncounted token started, and the overlap, twice the longest
 * token of either encoding (128 bytes), is re-merged with what follows. A
 * BPE merge near the window's end can change what is merged further left
 * only through a chain of competing merges, which 256 bytes of overlap
 * leave out in practice (the tests and `bench/tokens-cold` find the
 * windowed count equal to the whole merge on every class of run measured),
 * so such a count is flagged approximate but pays no token per cut: a run
 * of spaces used to count 50% high.
 */
const windowOverlap = 256;

/** The count of the long piece `text[from, to)`: cut where no token spans, else window by window. */
function countLong(encoder: BytePairEncoder, text: string, from: number, to: number): TokenCount {
  const { segmentLength } = encoderLimits;
  let tokens = 0;
  let approximate = false;
  let at = from;
  // The last window counted, reused when the next has the same text (a run of one repeated character).
  let previous = -1;
  let previousCount = 0;
  let previousAdvance = 0;
  for (;;) {
    // The same text as the last window (which had no place to cut, and is all countCuts reads): the same count.
    if (previous >= 0 && to - at > segmentLength && sameUnits(text, previous, at, segmentLength)) {
      tokens += previousCount;
      at += previousAdvance;
      continue;
    }
    tokens += countCuts(encoder, text, at, to, segmentLength);
    at = stopped;
    if (at >= to) return { tokens, approximate };
    approximate = true;
    const end = segmentEnd(text, at, at + segmentLength);
    const length = encodeUtf8Into(text, at, end, scratch);
    let counted = encoder.countBefore(scratch, length, length - windowOverlap);
    let advance = unitsIn(scratch, encoder.boundary);
    if (encoder.boundary === 0) {
      // No token starts a character in the window: cut at its end, erring high.
      counted = encoder.count(scratch, length) + boundaryMargin;
      advance = end - at;
    }
    if (end - at === segmentLength) [previous, previousCount, previousAdvance] = [at, counted, advance];
    tokens += counted;
    at += advance;
  }
}

/** Where {@link countCuts} stopped: `to`, or the start of `limit` units with no place to cut. */
let stopped = 0;

/**
 * Counts `text[from, to)` part by part, cutting between two wide characters
 * no token spans, until `to` or until `limit` units pass with no cut; reads
 * no further than `limit` units past the last cut.
 */
function countCuts(encoder: BytePairEncoder, text: string, from: number, to: number, limit: number): number {
  let tokens = 0;
  // The part being read: where it starts, its characters, its last character and what is known of it.
  let part = from;
  let chars = 0;
  let last = 0;
  let lastInfo = 0;
  for (let at = from; at < to; ) {
    let point = text.charCodeAt(at);
    let units = 1;
    if (point >= 0xd800 && point <= 0xdfff) {
      const low = text.charCodeAt(at + 1);
      if (point <= 0xdbff && at + 1 < to && (low & 0xfc00) === 0xdc00) {
        point = 0x10000 + ((point - 0xd800) << 10) + (low - 0xdc00);
        units = 2;
      } else point = 0xfffd;
    }
    if (at - part >= limit) {
      stopped = part;
      return tokens;
    }
    // Only wide characters are ever cut between: the others need no lookup (a run of spaces walks on).
    const info = point >= 0x800 ? encoder.charInfo(point) : 0;
    if (
      (lastInfo & info & charWide) !== 0 &&
      ((lastInfo & charMayEnd) === 0 || (info & charMayStart) === 0 || !encoder.spansBetween(last, point))
    ) {
      tokens += chars === 1 && lastInfo !== 0 ? lastInfo & charTokens : countPart(encoder, text, part, at);
      part = at;
      chars = 0;
    }
    chars++;
    last = point;
    lastInfo = info;
    at += units;
  }
  stopped = to;
  return tokens + (chars === 1 && lastInfo !== 0 ? lastInfo & charTokens : countPart(encoder, text, part, to));
}

function countPart(encoder: BytePairEncoder, text: string, from: number, to: number): number {
  return encoder.count(scratch, encodeUtf8Into(text, from, to, scratch));
}

/** Whether `text[a, a + length)` and `text[b, b + length)` are the same. */
function sameUnits(text: string, a: number, b: number, length: number): boolean {
  for (let i = 0; i < length; i++) if (text.charCodeAt(a + i) !== text.charCodeAt(b + i)) return false;
  return true;
}

/** How many UTF-16 units the UTF-8 bytes `bytes[0, length)` encode (whole characters). */
function unitsIn(bytes: Uint8Array, length: number): number {
  let units = 0;
  for (let i = 0; i < length; i++) {
    const byte = bytes[i] as number;
    if ((byte & 0xc0) !== 0x80) units += byte >= 0xf0 ? 2 : 1;
  }
  return units;
}

/** The exact tokenizer of an OpenAI encoding, over js-tiktoken's rank files; internal. */
export class EncodingTokenizer implements Tokenizer {
  readonly name: string;
  readonly approximate = false;

  constructor(readonly encoding: Encoding) {
    this.name = encoding;
  }

  /** Whether the rank file is loaded, so a count costs no load. */
  get loaded(): boolean {
    return encoders.has(this.encoding);
  }

  /**
   * Loads the rank file through a dynamic import (once per encoding) and,
   * with `warm`, counts a few thousand generated characters once per
   * encoding, so that the first real count runs compiled code (warm-up.ts).
   */
  async load(warm = false): Promise<void> {
    await loadAsync(this.encoding);
    if (!warm || warmed.has(this.encoding)) return;
    warmed.add(this.encoding);
    for (const text of warmUpTexts()) this.measure(text);
  }

  count(text: string): number {
    return this.measure(text).tokens;
  }

  measure(text: string): TokenCount {
    if (text.length === 0) return { tokens: 0, approximate: false };
    const encoder = loadSync(this.encoding);
    return countBounded(text, narrowPattern(this.encoding, text), (from, to) => countPiece(encoder, text, from, to), {
      limits: encoderLimits,
      countLong: (from, to) => countLong(encoder, text, from, to),
    });
  }
}

/** The shortest piece, in UTF-16 units, worth cutting: a shorter one (a word) merges whole faster. */
const cutFrom = 8;

/**
 * The count of the piece `text[from, to)`: a clause of wide characters
 * (CJK, kana, Hangul, Indic scripts, emoji) cut where no token spans, so
 * most of its characters are counted alone, once per process; anything
 * else merged whole. A piece ending in a CJK ideograph is cut however
 * short: ideographic text has no spaces, so its pieces are clauses, not
 * words (a Chinese paragraph's first count takes about a third less).
 */
function countPiece(encoder: BytePairEncoder, text: string, from: number, to: number): number {
  const last = text.charCodeAt(to - 1);
  if (last >= 0x800 && (to - from >= cutFrom || (last >= 0x3400 && last <= 0x9fff))) {
    return countCuts(encoder, text, from, to, to - from);
  }
  return encoder.count(scratch, encodeUtf8Into(text, from, to, scratch));
}

/** One tokenizer per encoding, shared, so their caches are too. */
export const encodingTokenizers: Readonly<Record<Encoding, EncodingTokenizer>> = {
  o200k_base: new EncodingTokenizer('o200k_base'),
  cl100k_base: new EncodingTokenizer('cl100k_base'),
};
