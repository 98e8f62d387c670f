import { ValidationError } from '@sluice/core';
import { baseModel } from './encodings.js';
import { memoByModel } from './model-memo.js';

/*
 * The one table of context windows in sluice, in tokens: trimContext's
 * default, and what @sluice/cost's price table answers for a model whose
 * entry gives no window of its own. Ordered: the first prefix that matches
 * wins. As the providers document them (checked 2025-11):
 *
 * - gpt-4.1 (all sizes): 1,047,576 (OpenAI model page). The original
 *   access layer said 128k, which wasted seven eighths of the window.
 * - gpt-5 (not -chat): 400,000 in total, of which at most 272,000 input
 *   (the rest is reserved for output; the API rejects longer prompts), so
 *   the input limit is used.
 * - claude-*: 200,000 (Anthropic; 1M only with a beta header).
 * - gemini-2.x / 1.5-flash: 1,048,576 input tokens; gemini-1.5-pro 2,097,152 (Google AI).
 * - deepseek-*: 128K (DeepSeek API docs for V3.1/V3.2, deepseek-chat and
 *   -reasoner; counted as 128,000). The original said 64k, the window of
 *   the first V3 API.
 *
 * Windows registered at run time (registerContextWindows, e.g. from
 * LiteLLM's price file through @sluice/cost) are matched by exact name
 * first and beat this table.
 */
const builtIn: ReadonlyArray<readonly [prefix: string, window: number]> = [
  ['gpt-4.1', 1_047_576],
  ['gpt-4o', 128_000],
  ['chatgpt-4o', 128_000],
  ['gpt-4.5', 128_000],
  ['gpt-4-turbo', 128_000],
  ['gpt-4-1106', 128_000],
  ['gpt-4-0125', 128_000],
  ['gpt-4-32k', 32_768],
  ['gpt-4', 8_192],
  ['gpt-3.5-turbo-instruct', 4_096],
  ['gpt-3.5-turbo', 16_385],
  ['gpt-5-chat', 128_000],
  ['gpt-5', 272_000],
  ['o1-mini', 128_000],
  ['o1-preview', 128_000],
  ['o1', 200_000],
  ['o3', 200_000],
  ['o4-mini', 200_000],
  ['claude-', 200_000],
  ['gemini-1.5-pro', 2_097_152],
  ['gemini-', 1_048_576],
  ['deepseek-', 128_000],
];

// A dated snapshot never changes the window: `gpt-4.1-2025-04-14`, `claude-sonnet-4-5-20250929`.
const snapshot = /(?:[-@](?:\d{4}-\d{2}-\d{2}|\d{8})|-latest)$/;
const registered = new Map<string, number>();

/**
 * The context window of `model` in tokens: a window registered with
 * {@link registerContextWindows}, else the built-in table's (see the
 * README), else `undefined` for a model neither knows. Provider prefixes
 * (`openai/gpt-4.1`) and dated snapshots are understood.
 *
 * @param model - a model name as sent
 * @example
 * ```ts
 * contextWindow('gpt-4.1-2025-04-14'); // 1_047_576
 * contextWindow('my-finetune');        // undefined
 * ```
 */
export function contextWindow(model: string): number | undefined {
  return windowOf(model);
}

// Looked up on every call that trims or prices; cleared whenever a window is registered.
const windowOf = memoByModel((model: string): number | undefined => {
  const name = baseModel(model);
  const known = registered.get(name) ?? registered.get(name.replace(snapshot, ''));
  if (known !== undefined) return known;
  for (const [prefix, window] of builtIn) if (name.startsWith(prefix)) return window;
  return undefined;
});

/**
 * Adds or replaces context windows by model name, for every later
 * {@link contextWindow} lookup in this process (and so for `trimContext`'s
 * default and `@sluice/cost`'s price table). Use it to teach sluice a new
 * model without waiting for a release; `@sluice/cost`'s
 * `loadLiteLLMPrices({ registerWindows: true })` calls it.
 *
 * @param windows - tokens by model name, e.g. `{ 'my-finetune': 32_768 }`
 * @throws ValidationError (field `contextWindows.<model>`) for a window that is not a positive integer; nothing is registered then
 * @example
 * ```ts
 * registerContextWindows({ 'llama-3.3-70b': 131_072 });
 * ```
 */
export function registerContextWindows(windows: Readonly<Record<string, number>>): void {
  for (const [model, window] of Object.entries(windows)) {
    if (!Number.isSafeInteger(window) || window <= 0) {
      throw new ValidationError(`contextWindows.${model}`, `must be a positive integer number of tokens, got ${String(window)}`);
    }
  }
  for (const [model, window] of Object.entries(windows)) registered.set(baseModel(model), window);
  windowOf.clear();
}
