/*
 * Where a byte-pair merge can be cut without changing it.
 *
 * Every part a BPE merge makes is a token of the vocabulary. So if no token
 * spans a position p of a piece (contains bytes on both sides of p), no
 * merge ever joins the bytes before p with those after it, and the merge of
 * the piece is the merge of its two halves, exactly. A token that spans the
 * boundary between two characters A and B contains a suffix of A followed
 * by a prefix of B (whole A and B when it covers them). So this records,
 * for every token, the pairs (suffix of A, prefix of B) around each
 * boundary inside it between two wide characters (3 or 4 UTF-8 bytes: CJK,
 * kana, Hangul, Indic scripts, emoji), and such a boundary of a text is a
 * cut point when none of its (suffix, prefix) pairs is recorded. In
 * o200k_base that is under 16,600 pairs (words of two or more CJK
 * characters, and a few hundred byte fragments); nearly every boundary of
 * random CJK or emoji text is a cut point, about 96% of Chinese prose's,
 * few of a Hindi word's. Built with the encoder, in a few milliseconds.
 *
 * A side is packed big-endian into an int: its first byte is 0x80 or more,
 * so the int says which bytes, and how many.
 */

/** Characters of more than 4 UTF-8 bytes do not exist, so longer sides can never match. */
const maxSide = 4;
/** Slots of the table: room for 32,768 pairs at half load; 512 KiB. */
const tableSlots = 1 << 16;
const slotMask = tableSlots - 1;

function pairHash(left: number, right: number): number {
  const hash = Math.imul(left, 0x9e3779b1) ^ Math.imul(right + 0x632be5ab, 0x85ebca77);
  return hash ^ (hash >>> 15);
}

function sideHash(side: number): number {
  const hash = Math.imul(side, 0x85ebca77);
  return (hash ^ (hash >>> 16)) & 0xffff;
}

/**
 * The (suffix, prefix) pairs that tokens span around a boundary between two
 * wide characters; internal.
 *
 * @example
 * ```ts
 * const pairs = new CrossingPairs();
 * for (const [from, to] of tokens) pairs.addToken(vocabulary, from, to);
 * pairs.spanned(utf8, 0, p, length); // false: the merge can be cut at p
 * ```
 */
export class CrossingPairs {
  /** Open addressing, two ints a slot: left side (0: empty), right side. */
  private readonly table = new Int32Array(2 * tableSlots);
  /** 1 where some recorded left side hashes, so most suffixes need no table probe. */
  private readonly lefts = new Uint8Array(0x10000);
  /** 1 where some recorded right side hashes. */
  private readonly rights = new Uint8Array(0x10000);
  private size = 0;

  /**
   * Reads the pairs of every token of a vocabulary; null when they are too
   * many (no OpenAI encoding comes near: o200k_base has under 16,600).
   *
   * @param bytes - every token's bytes, back to back
   * @param start - token `r` is `bytes[start[r], start[r + 1])`
   * @param count - how many tokens
   */
  static fromTokens(bytes: Uint8Array, start: Int32Array, count: number): CrossingPairs | null {
    const pairs = new CrossingPairs();
    // Four bytes at a time where all are ASCII (most of a vocabulary), then one flat loop over the rest,
    // calling out only at a boundary: it runs once, in a cold process, so it must compile quickly.
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.byteOffset % 4 === 0 ? bytes.length >> 2 : 0);
    let rank = 0;
    for (let word = 0, q = 1; q < bytes.length; q++) {
      if ((q & 3) === 0 && q >> 2 < words.length) {
        word = words[q >> 2] as number;
        // Skip a word of ASCII bytes whose first byte is not a lead byte after a continuation byte.
        if ((word & 0x80808080) === 0) {
          q += 3;
          continue;
        }
      }
      // A wide character's lead byte after a continuation byte (of a wide character, or of a token's first, cut one).
      if ((bytes[q] as number) < 0xe0 || ((bytes[q - 1] as number) & 0xc0) !== 0x80) continue;
      while ((start[rank + 1] as number) <= q) rank++;
      const from = start[rank] as number;
      if (from < q && rank < count && !pairs.addAround(bytes, from, q, start[rank + 1] as number)) return null;
    }
    return pairs;
  }

  /** Records the pair around `q` in the token `bytes[from, to)`, where `q` starts a wide character right after a continuation byte. */
  private addAround(bytes: Uint8Array, from: number, q: number, to: number): boolean {
    // The left side: back to the lead byte of the character ending at q, or to the token's start.
    let s = q - 1;
    while (s > from && ((bytes[s] as number) & 0xc0) === 0x80 && q - s < maxSide) s--;
    // Four continuation bytes in a row (no valid text holds them), or a character of two bytes.
    const first = bytes[s] as number;
    if ((first & 0xc0) === 0x80 ? s > from : first < 0xe0) return true;
    let left = 0;
    for (let i = s; i < q; i++) left = (left << 8) | (bytes[i] as number);
    let right = bytes[q] as number;
    for (let e = q + 1; e < to && e - q < maxSide && ((bytes[e] as number) & 0xc0) === 0x80; e++) {
      right = (right << 8) | (bytes[e] as number);
    }
    return this.add(left, right);
  }

  /** Records a pair; false when the table is full. */
  private add(left: number, right: number): boolean {
    const { table } = this;
    let slot = pairHash(left, right) & slotMask;
    for (; table[2 * slot] !== 0; slot = (slot + 1) & slotMask) {
      if (table[2 * slot] === left && table[2 * slot + 1] === right) return true;
    }
    if (++this.size * 2 > tableSlots) return false;
    table[2 * slot] = left;
    table[2 * slot + 1] = right;
    this.lefts[sideHash(left)] = 1;
    this.rights[sideHash(right)] = 1;
    return true;
  }

  private has(left: number, right: number): boolean {
    const { table } = this;
    for (let slot = pairHash(left, right) & slotMask; ; slot = (slot + 1) & slotMask) {
      const stored = table[2 * slot] as number;
      if (stored === 0) return false;
      if (stored === left && table[2 * slot + 1] === right) return true;
    }
  }

  /**
   * Whether some suffix of the character `bytes[from, to)` is the left side
   * of a recorded pair (false is sure; true may be a hash collision).
   *
   * @param bytes - the character's UTF-8 bytes, among others
   * @param from - where it starts
   * @param to - where it ends
   */
  mayEndPair(bytes: Uint8Array, from: number, to: number): boolean {
    let side = 0;
    for (let s = to - 1; s >= from; s--) {
      side |= (bytes[s] as number) << (8 * (to - 1 - s));
      if (this.lefts[sideHash(side)] === 1) return true;
    }
    return false;
  }

  /**
   * Whether some prefix of the character `bytes[from, to)` is the right
   * side of a recorded pair (false is sure; true may be a hash collision).
   *
   * @param bytes - the character's UTF-8 bytes, among others
   * @param from - where it starts
   * @param to - where it ends
   */
  mayStartPair(bytes: Uint8Array, from: number, to: number): boolean {
    let side = 0;
    for (let e = from; e < to; e++) {
      side = (side << 8) | (bytes[e] as number);
      if (this.rights[sideHash(side)] === 1) return true;
    }
    return false;
  }

  /**
   * Whether some token spans byte `p` of the UTF-8 text `bytes[from, to)`,
   * where `p` starts a wide character right after another one, both whole
   * in `[from, to)`.
   *
   * @param bytes - valid UTF-8
   * @param from - where the text starts (no character before it is read)
   * @param p - the boundary
   * @param to - where the text ends
   */
  spanned(bytes: Uint8Array, from: number, p: number, to: number): boolean {
    let left = 0;
    for (let s = p - 1; s >= from; s--) {
      const byte = bytes[s] as number;
      left |= byte << (8 * (p - 1 - s));
      if (this.lefts[sideHash(left)] === 1) {
        let right = 0;
        for (let e = p; e < to && (e === p || ((bytes[e] as number) & 0xc0) === 0x80); e++) {
          right = (right << 8) | (bytes[e] as number);
          if (this.has(left, right)) return true;
        }
      }
      if ((byte & 0xc0) !== 0x80 || p - s >= maxSide) break;
    }
    return false;
  }
}
