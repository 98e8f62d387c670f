import { describe, expect, it } from 'vitest';
import { encodingTokenizers } from './encoding-tokenizer.js';
import { loadTokenizer } from './tokenizer-for.js';
import { warmUpTexts } from './warm-up.js';

describe('the warm-up loadTokenizer counts', () => {
  it('is the same text in every process, one Latin-1 and one wide, with the shapes it claims', () => {
    const [latin, wide] = warmUpTexts() as [string, string];
    expect(warmUpTexts()).toEqual([latin, wide]);
    // One string per width: V8 compiles a pattern once for each.
    expect([...latin].every((char) => char.codePointAt(0)! <= 0xff)).toBe(true);
    expect([...wide].some((char) => char.codePointAt(0)! > 0xff)).toBe(true);
    expect(latin).toMatch(/[A-Za-z0-9+/]{200,}/);
    expect(latin).toMatch(/\d{3,}/);
    // A long CJK run (cut where no token spans), clauses, emoji, and words of the other scripts.
    expect(wide).toMatch(/[\u4e00-\u9fff]{200,}/);
    expect(wide).toMatch(/[\u4e00-\u9fff]+[，。]/);
    expect(wide).toMatch(/\p{Extended_Pictographic}{5,}/u);
    for (const script of [/[\u0430-\u044f]/, /[\u03b1-\u03c9]/, /[\u0627-\u064a]/, /[\u0915-\u0939]/, /[\uac00-\ud7a3]/, /[\u3041-\u3096]/]) {
      expect(wide).toMatch(script);
    }
    expect(latin.length + wide.length).toBeGreaterThan(6_000);
  });

  it('leaves every count as it was', async () => {
    const text = 'Hello, 世界! Привет 🌍 aGVsbG8gd29ybGQ=';
    const before = encodingTokenizers.o200k_base.measure(text);
    await loadTokenizer('gpt-4o');
    expect(encodingTokenizers.o200k_base.measure(text)).toEqual(before);
  });
});
