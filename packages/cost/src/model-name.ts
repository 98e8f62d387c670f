/*
 * How a model name as sent (or as a relay spells it) is matched to a price
 * table key. Only suffixes and prefixes that never change the price are
 * dropped: a dated snapshot (`gpt-4.1-2025-04-14`, `claude-sonnet-4-5-20250929`,
 * `gpt-3.5-turbo-0125`, `@20250929`, `-latest`) and a provider prefix
 * (`openai/`, `models/`). There is deliberately no prefix matching:
 * `gpt-4.1-mini` must never be priced as `gpt-4.1`. Suffixes after `:`
 * (OpenRouter's `:free`) do change the price, so they are kept and the name
 * stays unknown unless the table has it.
 */

const snapshot = /(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8}|\d{4})|-latest)$/;

/**
 * The canonical form of a model name: lowercase, without provider prefix
 * or snapshot suffix, with `4.5` and `4-5` spelled alike; internal.
 *
 * @param name - a model name as sent or as written in the table
 * @example
 * ```ts
 * canonicalModel('openai/gpt-4.1-2025-04-14'); // 'gpt-4-1'
 * canonicalModel('claude-sonnet-4-5-20250929') === canonicalModel('claude-sonnet-4.5'); // true
 * ```
 */
export function canonicalModel(name: string): string {
  let model = name.trim().toLowerCase();
  model = model.slice(model.lastIndexOf('/') + 1);
  model = model.replace(snapshot, '');
  return model.replace(/(\d)\.(?=\d)/g, '$1-');
}
