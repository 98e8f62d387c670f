/*
 * A byte-pair encoder over a tiktoken rank file, kept in typed arrays.
 *
 * Why not js-tiktoken's own `Tiktoken` class: it keys its rank map by
 * comma-joined byte strings, which costs 0.4–2 s and 35–70 MB to build, and
 * its merge loop re-slices and re-joins the piece on every step, which is
 * worse than quadratic (a 1,000-character Chinese clause takes seconds).
 * This encoder reads the same rank data, applies the same merge rule
 * (always the lowest-ranked adjacent pair, the leftmost on a tie, which is
 * tiktoken's), and gives the same counts (tests compare it with js-tiktoken),
 * but builds in a fraction of the time and merges with a heap: O(n log n)
 * for a piece of n bytes.
 */

import { CrossingPairs } from './crossing-pairs.js';
import { PairCache, unknownPair } from './pair-cache.js';
import { encodePoint } from './utf8.js';

/** The shape of js-tiktoken's rank files (`js-tiktoken/ranks/*`). */
export interface RankFile {
  pat_str: string;
  bpe_ranks: string;
}

/** The longest piece, in bytes, that the default encoder merges at once. */
export const maxPieceBytes = 8192;

/** {@link BytePairEncoder.charInfo}: the character alone is this many tokens (1–4). */
export const charTokens = 0b111;
/** {@link BytePairEncoder.charInfo}: the character has 3 or 4 UTF-8 bytes. */
export const charWide = 0b1000;
/** {@link BytePairEncoder.charInfo}: some token may span from inside or before it into the next character. */
export const charMayEnd = 0b1_0000;
/** {@link BytePairEncoder.charInfo}: some token may span from the previous character into it. */
export const charMayStart = 0b10_0000;

/** Options of {@link BytePairEncoder.fromRankFile}. */
export interface EncoderOptions {
  /** The longest piece it merges, in bytes (default {@link maxPieceBytes}; the tests' reference merges longer ones). */
  capacity?: number;
  /**
   * Whether it records where tokens span the boundaries between wide
   * characters (see `crossing-pairs.ts`), so {@link BytePairEncoder.charInfo}
   * and {@link BytePairEncoder.spansBetween} tell the counters where a piece
   * can be cut (default true; the tests' reference merges every piece whole).
   */
  cut?: boolean;
}

let base64: Int8Array | undefined;

/** The value of each base64 digit by char code (-1: none), built on the first rank file read. */
function base64Digits(): Int8Array {
  if (!base64) {
    base64 = new Int8Array(128).fill(-1);
    const digits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
    for (let index = 0; index < digits.length; index++) base64[digits.charCodeAt(index)] = index;
  }
  return base64;
}

/** FNV-1a over `bytes[start, end)`, as an Int32. */
function hashBytes(bytes: Uint8Array, start: number, end: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < end; i++) hash = Math.imul(hash ^ (bytes[i] as number), 0x01000193);
  return hash | 0;
}

/**
 * Counts the tokens of one pre-tokenized piece, given as UTF-8 bytes.
 *
 * @example
 * ```ts
 * const encoder = BytePairEncoder.fromRankFile(rankFile);
 * const bytes = new TextEncoder().encode(' hello');
 * encoder.count(bytes, bytes.length); // 1
 * ```
 */
export class BytePairEncoder {
  /** Every token's bytes, back to back; token `r` is `bytes[start[r], start[r + 1])`. */
  private readonly bytes: Uint8Array;
  private readonly start: Int32Array;
  /**
   * Open addressing, two ints a slot: rank + 1 (0 is empty), then the
   * token's hash, so a probe that meets another token (most lookups are
   * of pairs that are no token) is settled without reading its bytes.
   */
  private readonly table: Int32Array;
  private readonly mask: number;
  private readonly longestToken: number;
  /** The token of each single byte (every byte is one in a byte-level BPE). */
  private readonly byteToken = new Int32Array(256);
  private readonly pairs = new PairCache();
  /** What two single bytes merge into, by `first << 8 | second`: {@link unknownPair} until looked up. */
  private readonly bytePairs = new Int32Array(65_536).fill(unknownPair);
  /** The longest piece, in bytes, that this encoder merges. */
  readonly capacity: number;
  // Scratch space of the merge, reused: counting is synchronous.
  private readonly next: Int32Array;
  private readonly prev: Int32Array;
  private readonly pairRank: Int32Array;
  /** The token each part is. */
  private readonly token: Int32Array;
  /** Candidate pairs, rank × capacity + position: exact in a double for any capacity used here. */
  private readonly heap: Float64Array;
  /** Where {@link BytePairEncoder.countBefore} stopped counting, in bytes. */
  boundary = 0;
  /** Where tokens span boundaries between wide characters: undefined until read, null when cutting is off. */
  private crossing: CrossingPairs | null | undefined;
  /** {@link BytePairEncoder.charInfo} by code point (0: not looked up yet); built on first use. */
  private charInfos: Uint8Array | undefined;
  private readonly charBytes = new Uint8Array(8);

  private constructor(bytes: Uint8Array, start: Int32Array, count: number, capacity: number, cut: boolean) {
    this.capacity = capacity;
    this.next = new Int32Array(capacity + 1);
    this.prev = new Int32Array(capacity + 1);
    this.pairRank = new Int32Array(capacity + 1);
    this.token = new Int32Array(capacity + 1);
    this.heap = new Float64Array(3 * capacity + 3);
    this.bytes = bytes;
    this.start = start;
    let size = 1;
    while (size < count * 2) size *= 2;
    this.table = new Int32Array(2 * size);
    this.mask = size - 1;
    let longest = 0;
    for (let rank = 0; rank < count; rank++) {
      const from = start[rank] as number;
      const to = start[rank + 1] as number;
      if (to === from) continue;
      longest = Math.max(longest, to - from);
      const hash = hashBytes(bytes, from, to);
      let slot = hash & this.mask;
      while (this.table[2 * slot] !== 0) slot = (slot + 1) & this.mask;
      this.table[2 * slot] = rank + 1;
      this.table[2 * slot + 1] = hash;
    }
    this.crossing = cut ? undefined : null;
    this.longestToken = longest;
    const single = new Uint8Array(1);
    for (let byte = 0; byte < 256; byte++) {
      single[0] = byte;
      const rank = this.rankOf(single, 0, 1);
      if (rank < 0) throw new RangeError(`rank file has no token for byte ${byte}`);
      this.byteToken[byte] = rank;
    }
  }

  /**
   * Builds the encoder from a rank file: lines of `<tag> <first rank>
   * <base64 token>…`, ranks consecutive from the first.
   *
   * @param file - a js-tiktoken rank file
   * @param options - `capacity` and `cut`
   */
  static fromRankFile(file: RankFile, options: EncoderOptions = {}): BytePairEncoder {
    const text = file.bpe_ranks;
    const bytes = new Uint8Array(Math.ceil((text.length * 3) / 4));
    const starts: number[] = [];
    let length = 0;
    let rank = 0;
    let field = 0;
    let i = 0;
    while (i < text.length) {
      let end = i;
      while (end < text.length && text.charCodeAt(end) !== 32 && text.charCodeAt(end) !== 10) end++;
      if (field === 1) rank = Number.parseInt(text.slice(i, end), 10);
      else if (field >= 2) {
        while (starts.length < rank) starts.push(length);
        starts.push(length);
        length = decodeBase64(text, i, end, bytes, length);
        rank++;
      }
      field = text.charCodeAt(end) === 10 ? 0 : field + 1;
      i = end + 1;
    }
    starts.push(length);
    // Copied to its used length: base64 with separators overestimates it by a third.
    const { capacity = maxPieceBytes, cut = true } = options;
    return new BytePairEncoder(bytes.slice(0, length), Int32Array.from(starts), starts.length - 1, capacity, cut);
  }

  /** The rank of `bytes[from, to)`, or -1 when it is not a token. */
  private rankOf(bytes: Uint8Array, from: number, to: number): number {
    const length = to - from;
    if (length > this.longestToken) return -1;
    const hash = hashBytes(bytes, from, to);
    const { table } = this;
    for (let slot = hash & this.mask; ; slot = (slot + 1) & this.mask) {
      const entry = table[2 * slot] as number;
      if (entry === 0) return -1;
      if (table[2 * slot + 1] !== hash) continue;
      const rank = entry - 1;
      const tokenStart = this.start[rank] as number;
      if ((this.start[rank + 1] as number) - tokenStart === length) {
        let same = true;
        for (let k = 0; k < length; k++) {
          if (this.bytes[tokenStart + k] !== bytes[from + k]) {
            same = false;
            break;
          }
        }
        if (same) return rank;
      }
    }
  }

  /**
   * The number of tokens of the piece `bytes[0, length)`.
   *
   * @param bytes - the piece's UTF-8 bytes
   * @param length - how many of them; at most {@link BytePairEncoder.capacity}
   * @throws RangeError when `length` exceeds {@link BytePairEncoder.capacity}
   */
  count(bytes: Uint8Array, length: number): number {
    if (length < 2) return length;
    if (length > this.capacity) throw new RangeError(`piece of ${length} bytes exceeds ${this.capacity}`);
    if (this.rankOf(bytes, 0, length) >= 0) return 1;
    return this.merge(bytes, 0, length);
  }

  /**
   * Reads where tokens span the boundaries between wide characters, unless
   * already read: what cutting a run needs, done on the first such run or
   * ahead of time by `loadTokenizer()` (milliseconds, but a cold process
   * runs this one loop slowly before it is compiled).
   *
   * @returns the pairs, or null when cutting is off
   */
  crossingPairs(): CrossingPairs | null {
    if (this.crossing === undefined) this.crossing = CrossingPairs.fromTokens(this.bytes, this.start, this.start.length - 1);
    return this.crossing;
  }

  /**
   * What the counters need of the character `point` alone, in one byte:
   * its tokens (bits 0–2), whether it is wide (3 or 4 UTF-8 bytes; bit 3),
   * whether it may end (bit 4) or start (bit 5) a token spanning a
   * boundary between two wide characters; cached by code point.
   *
   * @param point - a code point (U+FFFD for a lone surrogate, as UTF-8 encodes it)
   */
  charInfo(point: number): number {
    const infos = this.charInfos ?? (this.charInfos = new Uint8Array(0x110000));
    let info = infos[point] as number;
    if (info === 0) {
      const bytes = this.charBytes;
      const length = encodePoint(point, bytes, 0);
      info = this.countShort(bytes, 0, length);
      const crossing = length >= 3 ? this.crossingPairs() : null;
      if (crossing !== null) {
        info |= charWide;
        if (crossing.mayEndPair(bytes, 0, length)) info |= charMayEnd;
        if (crossing.mayStartPair(bytes, 0, length)) info |= charMayStart;
      }
      infos[point] = info;
    }
    return info;
  }

  /**
   * Whether a token spans the boundary between the wide characters `a` and
   * `b`, so a merge cannot be cut there.
   *
   * @param a - the code point before
   * @param b - the code point after
   */
  spansBetween(a: number, b: number): boolean {
    const bytes = this.charBytes;
    const middle = encodePoint(a, bytes, 0);
    const end = encodePoint(b, bytes, middle);
    const crossing = this.crossingPairs();
    return crossing === null || crossing.spanned(bytes, 0, middle, end);
  }

  /**
   * The merge of 1 to 4 bytes, without the heap: once two parts are left,
   * they merge only if the whole is a token, so the order of the first
   * merge decides nothing but which pair a four-byte character keeps.
   */
  private countShort(bytes: Uint8Array, from: number, to: number): number {
    if (to - from < 2 || this.rankOf(bytes, from, to) >= 0) return to - from < 1 ? 0 : 1;
    if (to - from === 2) return 2;
    const first = this.rankOf(bytes, from, from + 2);
    const second = this.rankOf(bytes, from + 1, from + 3);
    if (to - from === 3) return first >= 0 || second >= 0 ? 2 : 3;
    const third = this.rankOf(bytes, from + 2, to);
    if (first < 0 && second < 0 && third < 0) return 4;
    // The lowest-ranked pair merges first (the leftmost on a tie); then one of the two new pairs must be a token.
    const lowest = Math.min(first < 0 ? Infinity : first, second < 0 ? Infinity : second, third < 0 ? Infinity : third);
    let merged: boolean;
    if (lowest === first) merged = this.rankOf(bytes, from, from + 3) >= 0 || third >= 0;
    else if (lowest === second) merged = this.rankOf(bytes, from, from + 3) >= 0 || this.rankOf(bytes, from + 1, to) >= 0;
    else merged = first >= 0 || this.rankOf(bytes, from + 1, to) >= 0;
    return merged ? 2 : 3;
  }

  /**
   * Merges the piece `bytes[0, length)` whole, then counts only its tokens
   * that start before `limit`: the window step of a run too long to merge
   * at once. {@link boundary} is set to the byte where the first token not
   * counted starts, the last token start at or before `limit` that is also
   * the start of a character (0 when there is none: then nothing is counted).
   *
   * @param bytes - the window's UTF-8 bytes
   * @param length - how many of them; at most {@link BytePairEncoder.capacity}
   * @param limit - no token starting after this byte is counted
   * @throws RangeError when `length` exceeds {@link BytePairEncoder.capacity}
   */
  countBefore(bytes: Uint8Array, length: number, limit: number): number {
    if (length > this.capacity) throw new RangeError(`piece of ${length} bytes exceeds ${this.capacity}`);
    this.boundary = 0;
    if (length < 2) return 0;
    this.merge(bytes, 0, length);
    const { next } = this;
    let tokens = 0;
    let counted = 0;
    for (let at = 0; at < length && at <= limit; at = next[at] as number) {
      // A continuation byte (10xxxxxx) cannot start the next window.
      if (at > 0 && ((bytes[at] as number) & 0xc0) !== 0x80) {
        this.boundary = at;
        counted = tokens;
      }
      tokens++;
    }
    return counted;
  }

  /*
   * The merge: parts are a linked list over `bytes` (`next`, `prev`), the
   * candidate pairs a binary heap of (rank, position) packed in one int:
   * rank × capacity + position, so the smallest is the lowest rank
   * and, on a tie, the leftmost pair. Written without closures: it is the
   * hot loop of a cold process, and plain methods on typed arrays are
   * what the baseline compiler and the optimiser handle soonest.
   */
  private merge(bytes: Uint8Array, from: number, to: number): number {
    const { next, prev, pairRank, heap, token, byteToken, capacity } = this;
    for (let at = from; at < to; at++) {
      next[at] = at + 1;
      prev[at] = at - 1;
      token[at] = byteToken[bytes[at] as number] as number;
    }
    let size = 0;
    for (let at = from; at < to - 1; at++) {
      const rank = this.bytePairOf(bytes, at);
      pairRank[at] = rank;
      if (rank >= 0) size = this.push(size, rank * capacity + at);
    }
    pairRank[to - 1] = -1;
    let parts = to - from;
    while (size > 0) {
      const top = heap[0] as number;
      size = this.pop(size);
      const rank = Math.floor(top / capacity);
      const left = top - rank * capacity;
      // A stale entry: the pair starting here has changed since it was pushed.
      if (pairRank[left] !== rank) continue;
      const right = next[left] as number;
      const after = next[right] as number;
      next[left] = after;
      token[left] = rank;
      if (after < to) prev[after] = left;
      pairRank[right] = -1;
      parts--;
      // The two pairs the merge changed: the new part with the next, then the previous with it.
      // One call site each for pairOf and push keeps the optimised loop small to compile.
      for (let first = left, step = 0; step < 2; step++) {
        if (step === 1) {
          first = prev[left] as number;
          if (first < from) break;
        }
        const second = next[first] as number;
        const pair = second < to ? this.pairOf(bytes, first, second) : -1;
        pairRank[first] = pair;
        if (pair >= 0) size = this.push(size, pair * capacity + first);
      }
    }
    return parts;
  }

  /** What the parts starting at `at` and `second` merge into: the pair cache by their tokens, else the rank of their bytes. */
  private pairOf(bytes: Uint8Array, at: number, second: number): number {
    const left = this.token[at] as number;
    const right = this.token[second] as number;
    let merged = this.pairs.get(left, right);
    if (merged === unknownPair) {
      merged = this.rankOf(bytes, at, this.next[second] as number);
      this.pairs.set(left, right, merged);
    }
    return merged;
  }

  /** What the single bytes at `at` and `at + 1` merge into. */
  private bytePairOf(bytes: Uint8Array, at: number): number {
    const key = ((bytes[at] as number) << 8) | (bytes[at + 1] as number);
    let merged = this.bytePairs[key] as number;
    if (merged === unknownPair) {
      merged = this.rankOf(bytes, at, at + 2);
      this.bytePairs[key] = merged;
    }
    return merged;
  }

  private push(size: number, value: number): number {
    const { heap } = this;
    let at = size;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      const above = heap[parent] as number;
      if (above <= value) break;
      heap[at] = above;
      at = parent;
    }
    heap[at] = value;
    return size + 1;
  }

  /** Removes the heap's top; returns the new size. */
  private pop(size: number): number {
    const { heap } = this;
    const last = heap[--size] as number;
    let at = 0;
    for (;;) {
      let child = 2 * at + 1;
      if (child >= size) break;
      if (child + 1 < size && (heap[child + 1] as number) < (heap[child] as number)) child++;
      if ((heap[child] as number) >= last) break;
      heap[at] = heap[child] as number;
      at = child;
    }
    heap[at] = last;
    return size;
  }
}

function decodeBase64(text: string, from: number, to: number, out: Uint8Array, at: number): number {
  const base64 = base64Digits();
  let buffer = 0;
  let bits = 0;
  for (let i = from; i < to; i++) {
    const value = base64[text.charCodeAt(i)] ?? -1;
    if (value < 0) continue; // '=' padding
    buffer = (buffer << 6) | value;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[at++] = (buffer >> bits) & 0xff;
    }
  }
  return at;
}
