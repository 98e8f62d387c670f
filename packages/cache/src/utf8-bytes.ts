/**
 * The UTF-8 length of a string without encoding it: what the LRU's bytes
 * bound counts, and how the cache sizes an entry from its parts.
 *
 * @module
 */

const nonAscii = /[^\x00-\x7f]/;

// Node's and Bun's Buffer counts UTF-8 bytes natively (SIMD), 10 to 100
// times faster than a scan in JavaScript: a stream's entry of a few KiB is
// sized in tens of nanoseconds instead of microseconds. Read from the
// global, not imported, so the package still loads on every runtime.
const nativeByteLength = (globalThis as { Buffer?: { byteLength?: (text: string, encoding: 'utf8') => number } }).Buffer?.byteLength;

/**
 * The UTF-8 length of `text`, exact (a lone surrogate counts as the three
 * bytes of the U+FFFD it is encoded as), without encoding it; internal.
 *
 * @param text - what to measure
 */
export const utf8Bytes: (text: string) => number =
  typeof nativeByteLength === 'function' ? (text) => nativeByteLength(text, 'utf8') : portableUtf8Bytes;

/**
 * How many more bytes `text` takes in UTF-8 than it has UTF-16 units
 * (0 for ASCII): an entry built from parts is as long in bytes as it is in
 * units plus this for each part that is not plain ASCII; internal.
 *
 * @param text - a part of an entry
 */
export function extraUtf8Bytes(text: string): number {
  return utf8Bytes(text) - text.length;
}

/**
 * {@link utf8Bytes} in plain JavaScript, where the runtime has no Buffer; internal.
 *
 * @param text - what to measure
 */
export function portableUtf8Bytes(text: string): number {
  // Most entries are ASCII JSON: one native scan instead of a loop over every unit.
  if (!nonAscii.test(text)) return text.length;
  let bytes = text.length;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) continue;
    if (code < 0x800) {
      bytes += 1;
      continue;
    }
    // A surrogate pair (two units) is four bytes; a lone surrogate is encoded as U+FFFD, three.
    if (code >= 0xd800 && code <= 0xdbff) {
      const low = text.charCodeAt(index + 1);
      if (low >= 0xdc00 && low <= 0xdfff) {
        bytes += 2;
        index++;
        continue;
      }
    }
    bytes += 2;
  }
  return bytes;
}
