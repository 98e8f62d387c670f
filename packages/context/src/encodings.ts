import { memoByModel } from './model-memo.js';

/**
 * An OpenAI BPE encoding that this package counts exactly: `o200k_base`
 * (gpt-4o, gpt-4.1, gpt-4.5, gpt-5, the o-series) or `cl100k_base` (gpt-4,
 * gpt-3.5-turbo, the embedding models).
 *
 * @example
 * ```ts
 * const encoding: Encoding = 'o200k_base';
 * const tokenizer = await gptTokenizer(encoding);
 * ```
 */
export type Encoding = 'o200k_base' | 'cl100k_base';

/** Every encoding of {@link Encoding}, for validation. */
export const encodings: readonly Encoding[] = ['o200k_base', 'cl100k_base'];

const contractions = "('s|'S|'t|'T|'re|'rE|'Re|'RE|'ve|'vE|'Ve|'VE|'m|'M|'ll|'lL|'Ll|'LL|'d|'D)";

/*
 * The pre-tokenizer patterns, as js-tiktoken ships them (its rank files'
 * `pat_str`; a test checks they stay equal). They are kept here so the
 * bounded splitter works for any backend without loading a rank file.
 */
const patterns: Record<Encoding, string> = {
  o200k_base: [
    `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+${contractions}?`,
    `[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*${contractions}?`,
    '\\p{N}{1,3}',
    ' ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*',
    '\\s*[\\r\\n]+',
    '\\s+(?!\\S)',
    '\\s+',
  ].join('|'),
  cl100k_base: [
    contractions,
    '[^\\r\\n\\p{L}\\p{N}]?\\p{L}+',
    '\\p{N}{1,3}',
    ' ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*',
    '\\s*[\\r\\n]+',
    '\\s+(?!\\S)',
    '\\s+',
  ].join('|'),
};

/**
 * The pre-tokenizer pattern of `encoding` (the `pat_str` of its rank file).
 *
 * @param encoding - the encoding
 * @example
 * ```ts
 * const pieces = 'Hello world'.match(new RegExp(patternOf('o200k_base'), 'gu'));
 * ```
 */
export function patternOf(encoding: Encoding): string {
  return patterns[encoding];
}

const piecePatterns = new Map<Encoding, RegExp>();

/**
 * The pre-tokenizer of `encoding` as the counters run it, compiled once
 * per encoding on first use (not at import: compiling its Unicode classes
 * takes milliseconds): sticky (`y`), so a piece is found with `test()`
 * where the last one ended without building a match array, and with the
 * contractions' group non-capturing. Shared: counting is synchronous, so
 * no two counts use its `lastIndex` at once.
 *
 * @param encoding - the encoding
 * @example
 * ```ts
 * const pattern = piecePattern('o200k_base');
 * pattern.lastIndex = 0;
 * pattern.test('Hello world'); // true, and pattern.lastIndex is 5
 * ```
 */
export function piecePattern(encoding: Encoding): RegExp {
  let pattern = piecePatterns.get(encoding);
  if (!pattern) {
    pattern = new RegExp(piecePatternSource(encoding), 'guy');
    piecePatterns.set(encoding, pattern);
  }
  return pattern;
}

/**
 * The source of {@link piecePattern}: the pattern of `encoding` with the
 * contractions' group non-capturing; internal.
 *
 * @param encoding - the encoding
 * @example
 * ```ts
 * new RegExp(piecePatternSource('o200k_base'), 'guy');
 * ```
 */
export function piecePatternSource(encoding: Encoding): string {
  return patternOf(encoding).replaceAll(contractions, `(?:${contractions.slice(1)}`);
}

const o200k = /^(?:gpt-4o|gpt-4\.1|gpt-4\.5|gpt-5|gpt-oss|chatgpt-4o|o1|o3|o4|codex-mini|computer-use)(?![a-z])/;
const cl100k = /^(?:gpt-4|gpt-3\.5|gpt-35|text-embedding-3|text-embedding-ada-002)(?![a-z])/;

/**
 * A model name as the tables of this package key it: lowercased, without a
 * router's provider prefix (`openai/gpt-4o`) or a variant suffix
 * (`gpt-4o:free`), and a fine-tune (`ft:gpt-4o-mini:org::id`) as its base.
 *
 * @param model - the model name of a request
 * @example
 * ```ts
 * baseModel('openai/GPT-4o:floor'); // 'gpt-4o'
 * ```
 */
export const baseModel: (model: string) => string = memoByModel(function baseModel(model: string): string {
  let name = model.trim().toLowerCase();
  if (name.startsWith('ft:')) name = name.slice(3);
  name = name.slice(name.lastIndexOf('/') + 1);
  const colon = name.indexOf(':');
  return colon === -1 ? name : name.slice(0, colon);
});

/**
 * The OpenAI encoding of `model`, or `undefined` when its tokenizer is not
 * public (Claude, Gemini, DeepSeek, open models), where counts are estimates.
 *
 * @param model - a model name; provider prefixes and dated versions are understood
 * @example
 * ```ts
 * encodingForModel('gpt-4.1-2025-04-14'); // 'o200k_base'
 * encodingForModel('claude-sonnet-4.5');   // undefined
 * ```
 */
export const encodingForModel: (model: string) => Encoding | undefined = memoByModel(function encodingForModel(model: string): Encoding | undefined {
  const name = baseModel(model);
  if (o200k.test(name)) return 'o200k_base';
  if (cl100k.test(name)) return 'cl100k_base';
  return undefined;
});
