import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { countTokens } from './count-tokens.js';
import { encodingForModel, encodings, patternOf } from './encodings.js';
import { jsTiktokenCount, paragraphs, rankFile, uncutCount } from './test-reference.js';
import type { Tokenizer } from './tokenizer.js';
import { loadTokenizer, tokenizerFor } from './tokenizer-for.js';

// Building js-tiktoken's reference encoders takes seconds on a busy machine.
beforeAll(() => {
  for (const encoding of encodings) jsTiktokenCount('warm up', encoding);
}, 120_000);

describe('countTokens on OpenAI models', () => {
  it('gives the cookbook counts', () => {
    expect(countTokens('tiktoken is great!', 'gpt-3.5-turbo')).toEqual({ tokens: 6, approximate: false });
    expect(countTokens('antidisestablishmentarianism', 'gpt-4').tokens).toBe(6);
    expect(countTokens('2 + 2 = 4', 'gpt-4').tokens).toBe(7);
    expect(countTokens('お誕生日おめでとう', 'gpt-4').tokens).toBe(9);
    expect(countTokens('お誕生日おめでとう', 'gpt-4o').tokens).toBe(8);
  });

  it.each(Object.entries(paragraphs))('counts an ordinary %s paragraph exactly as js-tiktoken does', (_, text) => {
    for (const [model, encoding] of [['gpt-4.1', 'o200k_base'], ['gpt-4', 'cl100k_base']] as const) {
      expect(countTokens(text, model)).toEqual({ tokens: jsTiktokenCount(text, encoding), approximate: false });
    }
  });

  it('counts any short text exactly as js-tiktoken does', () => {
    const text = fc.oneof(
      fc.string({ unit: 'grapheme', maxLength: 120 }),
      fc.string({ unit: 'binary', maxLength: 120 }),
      fc.array(fc.constantFrom('the', ' cat', '  ', '\n', '中文', 'Ünïcödé', '123456', '{"a":1}', "'s", '😀', '\t'), { maxLength: 40 }).map((parts) => parts.join('')),
    );
    fc.assert(
      fc.property(text, fc.constantFrom(...encodings), (sample, encoding) => {
        const model = encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4';
        expect(countTokens(sample, model).tokens).toBe(jsTiktokenCount(sample, encoding));
      }),
      { numRuns: 300 },
    );
  }, 60_000);

  it('counts text that looks like a special token as plain text', () => {
    expect(countTokens('<|endoftext|>', 'gpt-4o').tokens).toBe(jsTiktokenCount('<|endoftext|>', 'o200k_base'));
  });

  it('counts the empty string as 0', () => {
    expect(countTokens('', 'gpt-4o')).toEqual({ tokens: 0, approximate: false });
  });

  it('keeps the pre-tokenizer patterns equal to js-tiktoken rank files', () => {
    for (const encoding of encodings) expect(patternOf(encoding)).toBe(rankFile(encoding).pat_str);
  });
});

describe('bounded counting', () => {
  it.each([
    ['100,000 repeated "a"', 'a'.repeat(100_000)],
    ['100,000 spaces between two words', `x${' '.repeat(100_000)}y`],
  ])('counts %s in bounded time, flagged approximate', (_, text) => {
    const counted = countTokens(text, 'gpt-4o');
    expect(counted.approximate).toBe(true);
    expect(counted.tokens).toBeGreaterThan(0);
  });

  it('counts 100,000 CJK characters or emoji without punctuation exactly, cut where no token spans', () => {
    for (const [unit, encoding, model] of [['中', 'o200k_base', 'gpt-4o'], ['😀', 'cl100k_base', 'gpt-4']] as const) {
      // No token of either encoding spans two of these characters, so the count is the sum of theirs.
      expect(uncutCount(unit.repeat(6_000), encoding)).toBe(6_000 * jsTiktokenCount(unit, encoding));
      expect(countTokens(unit.repeat(100_000 / unit.length), model)).toEqual({
        tokens: (100_000 / unit.length) * jsTiktokenCount(unit, encoding),
        approximate: false,
      });
    }
  });

  it('counts 100,000 random code units (lone surrogates included) in bounded time', () => {
    const text = randomUnits(100_000, 7);
    const counted = countTokens(text, 'gpt-4o');
    expect(counted.tokens).toBeGreaterThan(text.length / 4);
    expect(countTokens(text.slice(0, 2_000), 'gpt-4o').tokens).toBe(jsTiktokenCount(text.slice(0, 2_000), 'o200k_base'));
  });

  it('merges a piece of up to 2,048 units whole, exactly and unflagged', () => {
    for (const text of ['a'.repeat(2_000), '中'.repeat(2_048), `x${' '.repeat(2_000)}y`]) {
      for (const [model, encoding] of [['gpt-4o', 'o200k_base'], ['gpt-4', 'cl100k_base']] as const) {
        expect(countTokens(text, model)).toEqual({ tokens: uncutCount(text, encoding), approximate: false });
      }
    }
  });

  it('counts a longer run as the whole merge counts it: cut exactly between wide characters, else window by window, flagged', () => {
    const windowed = ['a'.repeat(9_000), `x${' '.repeat(9_000)}y`, `${'ab'.repeat(4_000)}c`, 'абв'.repeat(3_000)];
    const cut = ['中'.repeat(9_000), '😀'.repeat(4_500), '自然语言处理是人工智能的一个重要分支'.repeat(500), 'こんにちは世界🎉'.repeat(1_000)];
    for (const [runs, approximate] of [[windowed, true], [cut, false]] as const) {
      for (const text of runs) {
        for (const [model, encoding] of [['gpt-4o', 'o200k_base'], ['gpt-4', 'cl100k_base']] as const) {
          expect(countTokens(text, model)).toEqual({ tokens: uncutCount(text, encoding), approximate });
        }
      }
    }
  });

  it('counts random long runs as the whole merge does', () => {
    const alphabets = [
      'abcdefghijklmnopqrstuvwxyz',
      'aeiou',
      '自然语言处理是人工智能的一个重要分支',
      '-=*#~_.,;:!?|/<>()',
      ' \t',
      'абвгдежзийклмн',
      'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz+/',
      '😀🎉🚀👍🏽',
      // Words that are tokens across their characters, where most boundaries cannot be cut.
      '中国人民共和国的一是不了我在有他这为',
      'こんにちはありがとうカタカナ',
      '안녕하세요감사합니다',
      'नमस्तेधन्यवाद',
      '\u4e00\u4e8c\u9fa5\u3400\u4dbf\uac00\ud7a3\u3042',
    ];
    const run = fc
      .tuple(fc.constantFrom(...alphabets), fc.integer({ min: 2_049, max: 7_000 }), fc.integer())
      .map(([alphabet, length, seed]) => {
        const chars = [...alphabet];
        let text = '';
        for (let i = 0; text.length < length; i++) text += chars[Math.abs(seed + i * i * 7919) % chars.length];
        return alphabet.startsWith(' ') ? `x${text}y` : text;
      });
    fc.assert(
      fc.property(run, fc.constantFrom(...encodings), (text, encoding) => {
        // Mixed case and base64 split into shorter pieces: those are merged whole, unflagged.
        expect(countTokens(text, encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4').tokens).toBe(uncutCount(text, encoding));
      }),
      { numRuns: 40 },
    );
  }, 60_000);

  it('counts random runs of wide characters from many blocks as the whole merge does', () => {
    const wide = fc.oneof(
      fc.integer({ min: 0x4e00, max: 0x9fff }),
      fc.integer({ min: 0x3040, max: 0x30ff }),
      fc.integer({ min: 0xac00, max: 0xd7a3 }),
      fc.integer({ min: 0x0900, max: 0x097f }),
      fc.integer({ min: 0x1f300, max: 0x1f6ff }),
      fc.constantFrom(0x7684, 0x4e00, 0x662f, 0x4e0d, 0x4e86, 0x4eba, 0x6211, 0xfffd),
    );
    const run = fc.array(wide, { minLength: 2_100, maxLength: 3_000 }).map((points) => String.fromCodePoint(...points));
    fc.assert(
      fc.property(run, fc.constantFrom(...encodings), (text, encoding) => {
        expect(countTokens(text, encoding === 'o200k_base' ? 'gpt-4o' : 'gpt-4').tokens).toBe(uncutCount(text, encoding));
      }),
      { numRuns: 30 },
    );
  }, 60_000);

  it('agrees with js-tiktoken on the reference it is checked against', () => {
    expect(uncutCount('a'.repeat(600), 'o200k_base')).toBe(jsTiktokenCount('a'.repeat(600), 'o200k_base'));
    expect(uncutCount('中'.repeat(300), 'cl100k_base')).toBe(jsTiktokenCount('中'.repeat(300), 'cl100k_base'));
  });
});

describe('tokenizers', () => {
  it('maps models to their encodings, dated, prefixed and fine-tuned', () => {
    expect(encodingForModel('gpt-4.1-2025-04-14')).toBe('o200k_base');
    expect(encodingForModel('openai/gpt-4o-mini')).toBe('o200k_base');
    expect(encodingForModel('ft:gpt-4o-mini-2024-07-18:acme::abc123')).toBe('o200k_base');
    expect(encodingForModel('gpt-5.1')).toBe('o200k_base');
    expect(encodingForModel('o3-mini')).toBe('o200k_base');
    expect(encodingForModel('gpt-4-turbo')).toBe('cl100k_base');
    expect(encodingForModel('gpt-3.5-turbo-0125')).toBe('cl100k_base');
    expect(encodingForModel('claude-sonnet-4.5')).toBeUndefined();
    expect(encodingForModel('deepseek-v3.2')).toBeUndefined();
  });

  it('estimates for models whose tokenizer is not public', () => {
    for (const model of ['claude-sonnet-4.5', 'gemini-2.5-flash', 'deepseek-v3.2', 'llama-3.1-70b']) {
      const counted = countTokens(paragraphs.english, model);
      expect(counted.approximate).toBe(true);
      expect(counted.tokens).toBeGreaterThanOrEqual(countTokens(paragraphs.english, 'gpt-4').tokens);
    }
  });

  it('loads an encoding ahead of time and resolves to the same tokenizer', async () => {
    const loaded = await loadTokenizer('gpt-4o');
    expect(loaded).toBe(tokenizerFor('gpt-4o'));
    expect(await loadTokenizer('o200k_base')).toBe(loaded);
    expect(loaded.count('Hello')).toBe(1);
  });

  it('uses a tokenizer of your own', () => {
    const words: Tokenizer = { name: 'words', approximate: true, count: (text) => text.split(/\s+/).length };
    expect(countTokens('one two three', 'gpt-4o', { tokenizer: words })).toEqual({ tokens: 3, approximate: true });
  });

  it('rejects a text that is not a string', () => {
    expect(() => countTokens(undefined as unknown as string, 'gpt-4o')).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });
});

describe('the count cache', () => {
  it('encodes a text once: a spy tokenizer is called only for new text', () => {
    const count = vi.fn((text: string) => text.length);
    const spy: Tokenizer = { name: 'spy', approximate: false, count };
    countTokens('first turn', 'm', { tokenizer: spy });
    countTokens('first turn', 'm', { tokenizer: spy });
    countTokens('second turn', 'm', { tokenizer: spy });
    countTokens('first turn', 'm', { tokenizer: spy });
    expect(count.mock.calls.map(([text]) => text)).toEqual(['first turn', 'second turn']);
  });

  it('keeps separate counts per tokenizer for the same text', () => {
    const a: Tokenizer = { name: 'a', approximate: false, count: () => 1 };
    const b: Tokenizer = { name: 'b', approximate: false, count: () => 2 };
    expect(countTokens('same', 'm', { tokenizer: a }).tokens).toBe(1);
    expect(countTokens('same', 'm', { tokenizer: b }).tokens).toBe(2);
  });
});

function randomUnits(length: number, seed: number): string {
  let state = seed;
  const units = new Array<string>(length);
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    units[i] = String.fromCharCode(state >>> 16);
  }
  return units.join('');
}
