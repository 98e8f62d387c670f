/*
 * Why `loadTokenizer` counts text nobody asked about. The first count in a
 * process runs cold: V8 interprets the merge loop, the pre-tokenizer
 * pattern and the cutting of long runs, and compiles them as they get hot,
 * so the first 100,000 characters cost 3 to 5 times what the next do (80
 * to 130 ms of CPU for base64 or mixed scripts on a shared 2-core machine,
 * 17 to 25 once warm). A server awaits `loadTokenizer` at startup so that
 * no request pays the rank file's load; counting about 7,000 characters of
 * every shape of text there too (words, digits, base64, seven scripts, CJK
 * clauses and runs, emoji) moves most of that compiling to startup as well,
 * for a few tens of milliseconds more there. The text is generated, not
 * repeated, so every piece goes through the merge and none is served from
 * a cache.
 */

/** A small deterministic generator (a linear congruential one): the same text in every process. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1_664_525) + 1_013_904_223) >>> 0;
    return state / 4_294_967_296;
  };
}

/** `count` characters from the code points `from`–`to`. */
function run(random: () => number, from: number, to: number, count: number): string {
  let text = '';
  for (let i = 0; i < count; i++) text += String.fromCodePoint(from + Math.floor(random() * (to - from + 1)));
  return text;
}

const base64Digits = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

/** Blocks of the wide text's words: Cyrillic, Greek, Arabic, Devanagari, Hangul, Hiragana, accented Latin. */
const scripts: ReadonlyArray<readonly [number, number]> = [
  [0x430, 0x44f],
  [0x3b1, 0x3c9],
  [0x627, 0x64a],
  [0x915, 0x939],
  [0xac00, 0xd7a3],
  [0x3041, 0x3096],
  [0xe0, 0xff],
];

/**
 * The texts `loadTokenizer` counts to warm the counter up: one of Latin-1
 * only and one of wide characters, since V8 compiles a pattern once per
 * string width.
 */
export function warmUpTexts(): string[] {
  const random = generator(0x5eed);
  let latin = '';
  while (latin.length < 3_000) {
    const roll = random();
    if (roll < 0.7) latin += `${run(random, 0x61, 0x7a, 2 + Math.floor(random() * 8))}${random() < 0.1 ? ',' : ''} `;
    else if (roll < 0.8) latin += `${Math.floor(random() * 100_000)} `;
    else if (roll < 0.95) latin += `${run(random, 0x41, 0x5a, 1)}${run(random, 0x61, 0x7a, 4)}. `;
    else {
      let chunk = '';
      const length = 40 + Math.floor(random() * 400);
      for (let i = 0; i < length; i++) chunk += base64Digits.charAt(Math.floor(random() * 64));
      latin += `${chunk} `;
    }
  }
  let wide = '';
  while (wide.length < 4_000) {
    const roll = random();
    if (roll < 0.55) {
      const [from, to] = scripts[Math.floor(random() * scripts.length)] as readonly [number, number];
      wide += `${run(random, from, to, 2 + Math.floor(random() * 7))} `;
    } else if (roll < 0.85) wide += `${run(random, 0x4e00, 0x9fff, 4 + Math.floor(random() * 16))}${random() < 0.5 ? '，' : '。'}`;
    else if (roll < 0.95) wide += run(random, 0x1f300, 0x1f64f, 5 + Math.floor(random() * 40));
    else wide += run(random, 0x4e00, 0x9fff, 200 + Math.floor(random() * 200));
  }
  return [latin, wide];
}
