import { EncodingTokenizer, encodingTokenizers } from './encoding-tokenizer.js';
import { type Encoding, encodingForModel, encodings } from './encodings.js';
import { defaultEstimate } from './estimate-tokenizer.js';
import type { Tokenizer } from './tokenizer.js';

function encodingOf(model: string): Encoding | undefined {
  return (encodings as readonly string[]).includes(model) ? (model as Encoding) : encodingForModel(model);
}

/**
 * The default tokenizer of `model`: exact for OpenAI models (`o200k_base`
 * for gpt-4o, gpt-4.1, gpt-4.5, gpt-5 and the o-series; `cl100k_base` for
 * gpt-4 and gpt-3.5-turbo), an estimate that errs high for everything else.
 * Cheap: nothing is loaded until the first count (see {@link loadTokenizer}).
 *
 * @param model - a model name (provider prefixes and dated versions are understood) or an encoding name
 * @example
 * ```ts
 * tokenizerFor('gpt-4.1').name;           // 'o200k_base'
 * tokenizerFor('claude-sonnet-4.5').name; // 'estimate×1.2'
 * ```
 */
export function tokenizerFor(model: string): Tokenizer {
  const encoding = encodingOf(model);
  return encoding ? encodingTokenizers[encoding] : defaultEstimate;
}

/**
 * The default tokenizer of `model`, with its rank file loaded through a
 * dynamic `import()`: call it at startup so no request pays the load
 * (0.2–0.6 s for o200k_base here). It also counts about 7,000 generated
 * characters once per encoding, so that the first real count runs compiled
 * code rather than paying V8's warm-up (tens of milliseconds here, once).
 * Without it, the first exact count of an encoding loads the file
 * synchronously; counts are exact either way.
 *
 * @param model - a model name or an encoding name (`o200k_base`, `cl100k_base`)
 * @throws the import's error when js-tiktoken cannot be loaded
 * @example
 * ```ts
 * await Promise.all([loadTokenizer('gpt-4o'), loadTokenizer('gpt-4')]);
 * ```
 */
export async function loadTokenizer(model: string): Promise<Tokenizer> {
  const tokenizer = tokenizerFor(model);
  if (tokenizer instanceof EncodingTokenizer) await tokenizer.load(true);
  return tokenizer;
}

/**
 * The default tokenizer of `model`, at once when it needs no load (loaded
 * already, or an estimate), else once its rank file is loaded, not warmed
 * up: for a middleware that loads it on a call's way (`trimContext`),
 * where the warm-up would be paid by that call, however short its
 * messages, and a promise on every later call would cost more than its count.
 *
 * @param model - a model name or an encoding name
 * @throws the import's error (as a rejection) when js-tiktoken cannot be loaded
 */
export function tokenizerWhenLoaded(model: string): Tokenizer | Promise<Tokenizer> {
  const tokenizer = tokenizerFor(model);
  if (!(tokenizer instanceof EncodingTokenizer) || tokenizer.loaded) return tokenizer;
  return tokenizer.load(false).then(() => tokenizer);
}
