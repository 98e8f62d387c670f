import { type Encoding, piecePattern, piecePatternSource } from './encodings.js';

/*
 * The pre-tokenizer patterns' Unicode classes (\p{L}, \p{N}, their
 * negations) span the whole code space, and V8 compiles them on a
 * pattern's first use in a process, once per string width: about 25 ms of
 * CPU for text beyond Latin-1, 9 ms for the rest, a quarter of what the
 * first count of a long text may take. Most text is drawn from a few
 * blocks, so for a text whose every character is in the blocks below, the
 * pattern runs with each class narrowed to them: it matches the same
 * pieces (no character of the text is in a class the narrowing changed)
 * and compiles in about a millisecond. Any other text takes the full
 * pattern.
 *
 * The blocks: Basic Latin, Latin-1, Latin Extended-A and -B, Greek,
 * Cyrillic, Arabic, Devanagari, General Punctuation, CJK Symbols, Hiragana,
 * Katakana, CJK Extension A, CJK Unified Ideographs, Hangul Syllables,
 * Halfwidth and Fullwidth Forms, and the emoji blocks U+1F300-1F64F,
 * U+1F680-1F6FF, U+1F900-1F9FF. Their classes are Unicode 17's, as V8's
 * \p classes report them (a test checks every code point against the
 * running V8); code points unassigned in Unicode 17 are left out, so a text
 * with a character assigned later takes the full pattern.
 *
 * Runs from U+0000 up: a class letter, then the run's length − 1 in base 36.
 * U: Lu, Lt. L: Ll. O: Lm, Lo. M: marks. N: numbers. P: any other assigned
 * character (punctuation, symbols, spaces, controls). X: not in the blocks.
 */
const runs =
  'P1bN9P6UpP5LpP1aO0P6N1P0L0P2N0O0P0N2P0UmP0U6LnP0L7U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0' +
  'L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L1U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0' +
  'L1U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U1' +
  'L0U0L0U0L2U1L0U0L0U1L0U2L1U3L0U1L0U2L2U1L0U1L0U0L0U0L0U1L0U0L1U0L0U1L0U2L0U0L0U1L1O0U0L2O3U1L0U1' +
  'L0U1L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L1U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L1U1L0U0L0U2L0U0L0U0L0U0' +
  'L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0' +
  'L0U0L0U0L6U1L0U1L1U0L0U3L0U0L0U0L0U0L0U0L0X7zU0L0U0L0O0P0U0L0X1O0L2P0U0X3P1U0P0U2X0U0X0U1L0UgX0U' +
  '8LyU0L1U2L2U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L4U0L0P0U0L0U1L1U1eL1bU0L0U0L0U0L0U0L0U' +
  '0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0P0M6U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U' +
  '0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U1L0U0L0U0L0U0L0U0L0U0L0U0L1U' +
  '0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0U0L0X' +
  '73PfMaP4O16MkN9P3O1M0O2qP0O0M6P1M5O1M1P0M3O1N9O2P1O0Xe7M3O1hM2O0MhO0M6O9M1P1N9P0OeX4fzP2sX0P9X32' +
  'nP4O1N0PoN8M5P0O4P1N2O1P2X0O2dX1M1P1O2P0O2hP0O3XlbO533X1rOg73X2dbO8mbX7rwPeN9P6UpP5LpPaO2gX2O5X1' +
  'O5X1O5X1O2X2P6X0P6X1c0gPnjX1bP2gX2PgX2PcXeaP73';

/** Class codes, by code point. */
const unknown = 0;
const classCodes: Record<string, number> = { X: unknown, U: 1, L: 2, O: 3, M: 4, N: 5, P: 6 };

interface Classes {
  /** The class of each BMP code point (0: not in the blocks). */
  bmp: Uint8Array;
  /** Runs above the BMP: start, end (inclusive), class, … */
  astral: number[];
  /** Character-class bodies by class code, as ranges of `\u{…}`. */
  ranges: string[];
  /** The same, of Latin-1 only. */
  latin1: string[];
}

let classes: Classes | undefined;

function decode(): Classes {
  const bmp = new Uint8Array(0x10000);
  const astral: number[] = [];
  const ranges: string[] = ['', '', '', '', '', '', ''];
  const latin1: string[] = ['', '', '', '', '', '', ''];
  let point = 0;
  for (let i = 0; i < runs.length; ) {
    const code = classCodes[runs.charAt(i)] ?? unknown;
    let end = i + 1;
    // The length's digits are 0-9 and a-z; the next class letter is upper case.
    while (end < runs.length && !isUpperCase(runs.charCodeAt(end))) end++;
    const last = point + Number.parseInt(runs.slice(i + 1, end), 36);
    if (code !== unknown) {
      if (point < 0x10000) bmp.fill(code, point, last + 1);
      else astral.push(point, last, code);
      ranges[code] += `\\u{${point.toString(16)}}-\\u{${last.toString(16)}}`;
      if (point <= 0xff) latin1[code] += `\\u{${point.toString(16)}}-\\u{${Math.min(last, 0xff).toString(16)}}`;
    }
    point = last + 1;
    i = end;
  }
  return { bmp, astral, ranges, latin1 };
}

function isUpperCase(code: number): boolean {
  return code >= 0x41 && code <= 0x5a;
}

/** Where the characters of `text` are: all Latin-1, all in the blocks, or not (a lone surrogate is not). */
const enum Span {
  Outside,
  Latin1,
  Blocks,
}

function spanOf(text: string, bmp: Uint8Array, astral: number[]): Span {
  let span = Span.Latin1;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x100) continue;
    span = Span.Blocks;
    if (bmp[unit] !== unknown) continue;
    if (unit < 0xd800 || unit > 0xdbff) return Span.Outside;
    const low = text.charCodeAt(i + 1);
    if ((low & 0xfc00) !== 0xdc00) return Span.Outside;
    const point = 0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00);
    let found = false;
    for (let k = 0; k < astral.length; k += 3) {
      if (point >= (astral[k] as number) && point <= (astral[k + 1] as number)) {
        found = true;
        break;
      }
    }
    if (!found) return Span.Outside;
    i++;
  }
  return span;
}

/**
 * The class of `point` in the blocks (`U`: Lu, Lt; `L`: Ll; `O`: Lm, Lo;
 * `M`: marks; `N`: numbers; `P`: any other assigned character), or
 * `undefined` outside them; for the tests.
 *
 * @param point - a code point
 * @example
 * ```ts
 * classInBlocks(0x4e2d); // 'O'
 * ```
 */
export function classInBlocks(point: number): string | undefined {
  classes ??= decode();
  let code = point < 0x10000 ? (classes.bmp[point] as number) : unknown;
  for (let k = 0; point >= 0x10000 && k < classes.astral.length; k += 3) {
    if (point >= (classes.astral[k] as number) && point <= (classes.astral[k + 1] as number)) code = classes.astral[k + 2] as number;
  }
  return code === unknown ? undefined : 'XULOMNP'.charAt(code);
}

const narrowed = new Map<string, RegExp | null>();

/** The pattern of `encoding` with its classes narrowed to the blocks; null if it has a class this does not know. */
function narrowPatternOf(encoding: Encoding, ranges: string[]): RegExp | null {
  const [, upper, lower, other, mark, number] = ranges as [string, string, string, string, string, string];
  const letter = upper + lower + other;
  const source = piecePatternSource(encoding)
    .replaceAll('[^\\r\\n\\p{L}\\p{N}]', `[^\\r\\n${letter}${number}]`)
    .replaceAll('[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]', `[${upper}${other}${mark}]`)
    .replaceAll('[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]', `[${lower}${other}${mark}]`)
    .replaceAll('[^\\s\\p{L}\\p{N}]', `[^\\s${letter}${number}]`)
    .replaceAll('\\p{N}', `[${number}]`)
    .replaceAll('\\p{L}', `[${letter}]`);
  return source.includes('\\p{') ? null : new RegExp(source, 'guy');
}

/**
 * The pre-tokenizer of `encoding` for `text`: {@link piecePattern}, or, when
 * every character of `text` is in the blocks above, the same pattern with
 * its classes narrowed to them, which finds the same pieces and compiles in
 * a millisecond instead of 10–25; internal.
 *
 * @param encoding - the encoding
 * @param text - the text it will split
 * @example
 * ```ts
 * const pattern = narrowPattern('o200k_base', '你好，世界');
 * pattern.lastIndex = 0;
 * pattern.test('你好，世界'); // true, and pattern.lastIndex is 2
 * ```
 */
export function narrowPattern(encoding: Encoding, text: string): RegExp {
  classes ??= decode();
  const span = spanOf(text, classes.bmp, classes.astral);
  if (span === Span.Outside) return piecePattern(encoding);
  // Latin-1 text gets classes of a few ranges: V8 matches a long one-byte string against hundreds of ranges slowly.
  const key = span === Span.Latin1 ? `${encoding} latin1` : encoding;
  let pattern = narrowed.get(key);
  if (pattern === undefined) {
    pattern = narrowPatternOf(encoding, span === Span.Latin1 ? classes.latin1 : classes.ranges);
    narrowed.set(key, pattern);
  }
  return pattern ?? piecePattern(encoding);
}
