import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodings, piecePattern } from './encodings.js';
import { classInBlocks, narrowPattern } from './narrow-pattern.js';

const blocks: readonly [number, number][] = [
  [0x0000, 0x024f],
  [0x0370, 0x04ff],
  [0x0600, 0x06ff],
  [0x0900, 0x097f],
  [0x2000, 0x206f],
  [0x3000, 0x30ff],
  [0x3400, 0x4dbf],
  [0x4e00, 0x9fff],
  [0xac00, 0xd7a3],
  [0xff00, 0xffef],
  [0x1f300, 0x1f64f],
  [0x1f680, 0x1f6ff],
  [0x1f900, 0x1f9ff],
];

const classes: readonly [string, RegExp][] = [
  ['U', /^[\p{Lu}\p{Lt}]$/u],
  ['L', /^\p{Ll}$/u],
  ['O', /^[\p{Lm}\p{Lo}]$/u],
  ['M', /^\p{M}$/u],
  ['N', /^\p{N}$/u],
];

/** The class this V8 gives `point`, as the table names it; undefined when unassigned. */
function classOf(point: number): string | undefined {
  const char = String.fromCodePoint(point);
  if (/^\p{Cn}$/u.test(char)) return undefined;
  return classes.find(([, pattern]) => pattern.test(char))?.[0] ?? 'P';
}

function pieces(text: string, pattern: RegExp): number[] {
  const ends: number[] = [];
  pattern.lastIndex = 0;
  while (pattern.lastIndex < text.length && pattern.test(text)) ends.push(pattern.lastIndex);
  return ends;
}

describe('narrowPattern', () => {
  it("gives every code point of its blocks the class this runtime's Unicode classes give it", () => {
    const wrong: string[] = [];
    for (const [first, last] of blocks) {
      for (let point = first; point <= last; point++) {
        if (point >= 0xd800 && point <= 0xdfff) continue;
        if (classInBlocks(point) !== classOf(point)) wrong.push(`U+${point.toString(16)} ${classInBlocks(point)} ≠ ${classOf(point)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(classInBlocks(0x0530)).toBeUndefined(); // Armenian: outside the blocks
  });

  it('splits text of the blocks into the pieces the full pattern finds', () => {
    const point = fc.oneof(
      fc.constantFrom(0x20, 0x0a, 0x0d, 0x09, 0x27, 0x73, 0x2f, 0x31),
      ...blocks.map(([first, last]) => fc.integer({ min: first, max: last }).filter((p) => classOf(p) !== undefined && (p < 0xd800 || p > 0xdfff))),
    );
    const text = fc.array(point, { minLength: 1, maxLength: 60 }).map((points) => String.fromCodePoint(...points));
    fc.assert(
      fc.property(text, fc.constantFrom(...encodings), (sample, encoding) => {
        const narrow = narrowPattern(encoding, sample);
        expect(narrow).not.toBe(piecePattern(encoding));
        expect(pieces(sample, narrow)).toEqual(pieces(sample, piecePattern(encoding)));
      }),
      { numRuns: 2_000 },
    );
  });

  it('splits Latin-1 text, narrowed to Latin-1, into the pieces the full pattern finds', () => {
    const text = fc.array(fc.integer({ min: 0, max: 0xff }), { minLength: 1, maxLength: 60 }).map((points) => String.fromCharCode(...points));
    fc.assert(
      fc.property(text, fc.constantFrom(...encodings), (sample, encoding) => {
        const narrow = narrowPattern(encoding, sample);
        expect(narrow).not.toBe(piecePattern(encoding));
        expect(narrow).not.toBe(narrowPattern(encoding, `${sample}中`));
        expect(pieces(sample, narrow)).toEqual(pieces(sample, piecePattern(encoding)));
      }),
      { numRuns: 1_000 },
    );
  });

  it('takes the full pattern for a character outside the blocks or a lone surrogate', () => {
    for (const text of ['Բարեւ', 'a\ud800b', 'x\udc00', '𝔘𝔫𝔦']) {
      expect(narrowPattern('o200k_base', text)).toBe(piecePattern('o200k_base'));
    }
  });
});
