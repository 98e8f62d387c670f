import { ValidationError } from '@sluice/core';
import { nameOf } from './count-messages.js';
import { cachedCount } from './token-cache.js';
import type { TokenCount, Tokenizer } from './tokenizer.js';
import { tokenizerFor } from './tokenizer-for.js';

/**
 * Counts the tokens of a text for `model`. Exact for OpenAI models (the
 * first count of an encoding loads its rank file, see
 * {@link loadTokenizer}); an estimate flagged `approximate` for models
 * whose tokenizer is not public. Time is bounded for any input: a run
 * the pre-tokenizer cannot split is merged in overlapping windows and flagged.
 * Counts are cached by text.
 *
 * @param text - the text
 * @param model - the model name (picks the tokenizer)
 * @param options - `tokenizer` overrides the model's default
 * @throws ValidationError when `text` is not a string
 * @example
 * ```ts
 * countTokens('tiktoken is great!', 'gpt-4'); // { tokens: 6, approximate: false }
 * ```
 */
export function countTokens(text: string, model: string, options: { tokenizer?: Tokenizer } = {}): TokenCount {
  if (typeof text !== 'string') throw new ValidationError('text', 'must be a string');
  if (typeof model !== 'string') throw new ValidationError('model', `must be a model name, got ${nameOf(model)}`);
  return cachedCount(options.tokenizer ?? tokenizerFor(model), text);
}
