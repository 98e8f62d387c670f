/**
 * The input classes of the `tokens-cold` benchmark: seeded texts of any
 * length, the same in every process (a child builds its own).
 *
 * @module
 */
/*
 * Its own PRNG, not @sluice/testing's: a child imports this file before it
 * times the import of @sluice/context, which must find nothing of sluice
 * (or zod) loaded yet.
 */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let mixed = Math.imul(state ^ (state >>> 15), 1 | state);
    mixed ^= mixed + Math.imul(mixed ^ (mixed >>> 7), 61 | mixed);
    return ((mixed ^ (mixed >>> 14)) >>> 0) / 2 ** 32;
  };
}

type Make = (seed: number, chars: number) => string;

/** Repeats `next(random)` until `chars` UTF-16 units, cut there (never inside a surrogate pair). */
function build(seed: number, chars: number, next: (random: () => number) => string): string {
  const random = seededRandom(seed);
  const parts: string[] = [];
  let length = 0;
  while (length < chars) {
    const part = next(random);
    parts.push(part);
    length += part.length;
  }
  const text = parts.join('');
  const end = /[\uD800-\uDBFF]/.test(text.charAt(chars - 1)) ? chars - 1 : chars;
  return text.slice(0, end);
}

const pick = <T>(random: () => number, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

const words = 'the of and to in is that it was for on with as his at by be this had not are but from or have an they which one you were her all'.split(' ');
const hanzi =
  '的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生自会那后能对着事其里所去行过家十用发天如然' +
  '作方成者多日都三小军二无同么经法当起与好看学进种将还分此心前面又定见只主没公从知开本样现想已长动表点意通使明正被';
const foreign = ['Привет', 'мир', 'مرحبا', 'γειά', 'こんにちは', 'नमस्ते', '안녕하세요', '세계'];

/** Every class: ordinary text first, then runs the pre-tokenizer cannot split. */
export const inputClasses = {
  /** English-like prose: common words, commas, full stops. */
  English: (seed, chars) =>
    build(seed, chars, (random) => `${pick(random, words)}${random() < 0.08 ? ',' : ''}${random() < 0.06 ? '.' : ''} `),
  /** Chinese clauses of 4–20 characters between punctuation. */
  'Chinese prose': (seed, chars) =>
    build(seed, chars, (random) => {
      let clause = '';
      const length = 4 + Math.floor(random() * 17);
      for (let i = 0; i < length; i++) clause += hanzi.charAt(Math.floor(random() * hanzi.length));
      return clause + pick(random, ['，', '，', '。', '、', '；']);
    }),
  /** Any of 20,000 CJK ideographs with no punctuation: one run of 100,000. */
  'CJK, no punctuation': (seed, chars) => build(seed, chars, (random) => String.fromCharCode(0x4e00 + Math.floor(random() * 20_000))),
  /** Random emoji (U+1F300–U+1F64F), no spaces: one run. */
  emoji: (seed, chars) => build(seed, chars, (random) => String.fromCodePoint(0x1f300 + Math.floor(random() * 0x350))),
  /** Base64 of random bytes. */
  base64: (seed, chars) => {
    const random = seededRandom(seed);
    const bytes = new Uint8Array(Math.ceil((chars * 3) / 4) + 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
    return Buffer.from(bytes).toString('base64').slice(0, chars);
  },
  /** Words of seven scripts (Latin, Cyrillic, Arabic, Greek, Japanese, Devanagari, Hangul), spaced. */
  'mixed scripts': (seed, chars) =>
    build(seed, chars, (random) => `${random() < 0.4 ? pick(random, words) : pick(random, foreign)}${random() < 0.1 ? '.' : ''} `),
  /** `x`, spaces, `y`: one run of spaces (a unit shorter per seed, so two seeds give two texts). */
  spaces: (seed, chars) => `x${' '.repeat(chars - 1 - seed)}y`,
  /** One letter repeated. */
  'a × n': (seed, chars) => 'a'.repeat(chars + 1 - seed),
} satisfies Record<string, Make>;

/** The name of an input class. */
export type InputClass = keyof typeof inputClasses;
