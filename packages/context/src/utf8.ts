/**
 * Writes the UTF-8 bytes of `text[from, to)` into `out` from index 0 and
 * returns how many were written. A lone surrogate becomes U+FFFD, as with
 * `TextEncoder` (which js-tiktoken uses). `out` must hold `3 × (to − from)`
 * bytes.
 *
 * @param text - the string
 * @param from - first UTF-16 index
 * @param to - index after the last
 * @param out - where the bytes go
 * @example
 * ```ts
 * const out = new Uint8Array(12);
 * encodeUtf8Into('héllo', 0, 5, out); // 6
 * ```
 */
export function encodeUtf8Into(text: string, from: number, to: number, out: Uint8Array): number {
  let at = 0;
  for (let i = from; i < to; i++) {
    let code = text.charCodeAt(i);
    if (code < 0x80) {
      out[at++] = code;
    } else if (code < 0x800) {
      out[at++] = 0xc0 | (code >> 6);
      out[at++] = 0x80 | (code & 0x3f);
    } else if (code >= 0xd800 && code <= 0xdbff && i + 1 < to && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      const point = 0x10000 + ((code - 0xd800) << 10) + (text.charCodeAt(++i) - 0xdc00);
      out[at++] = 0xf0 | (point >> 18);
      out[at++] = 0x80 | ((point >> 12) & 0x3f);
      out[at++] = 0x80 | ((point >> 6) & 0x3f);
      out[at++] = 0x80 | (point & 0x3f);
    } else {
      if (code >= 0xd800 && code <= 0xdfff) code = 0xfffd;
      out[at++] = 0xe0 | (code >> 12);
      out[at++] = 0x80 | ((code >> 6) & 0x3f);
      out[at++] = 0x80 | (code & 0x3f);
    }
  }
  return at;
}

/**
 * Writes the UTF-8 bytes of the code point `point` at `bytes[at]` and
 * returns where they end.
 *
 * @param point - a code point, not a surrogate
 * @param bytes - where the bytes go (room for 4 at `at`)
 * @param at - where they start
 * @example
 * ```ts
 * encodePoint(0x4e2d, out, 0); // 3: '中' is E4 B8 AD
 * ```
 */
export function encodePoint(point: number, bytes: Uint8Array, at: number): number {
  if (point < 0x80) {
    bytes[at] = point;
    return at + 1;
  }
  if (point < 0x800) {
    bytes[at] = 0xc0 | (point >> 6);
    bytes[at + 1] = 0x80 | (point & 0x3f);
    return at + 2;
  }
  if (point < 0x10000) {
    bytes[at] = 0xe0 | (point >> 12);
    bytes[at + 1] = 0x80 | ((point >> 6) & 0x3f);
    bytes[at + 2] = 0x80 | (point & 0x3f);
    return at + 3;
  }
  bytes[at] = 0xf0 | (point >> 18);
  bytes[at + 1] = 0x80 | ((point >> 12) & 0x3f);
  bytes[at + 2] = 0x80 | ((point >> 6) & 0x3f);
  bytes[at + 3] = 0x80 | (point & 0x3f);
  return at + 4;
}
