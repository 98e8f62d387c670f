import { baseModel } from './encodings.js';

/*
 * Context windows, in tokens, as the providers document them (checked
 * 2025-11). Ordered: the first prefix that matches wins. @sluice/cost's
 * price table holds the same facts for the models it prices; pass
 * `contextWindow` to trimContext to use that (or any) table instead.
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
 */
const windows: ReadonlyArray<readonly [prefix: string, window: number]> = [
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

/**
 * The context window of `model` from the built-in table, or `undefined`
 * for a model it does not know; internal (trimContext's default).
 *
 * @param model - a model name; provider prefixes and dated versions are understood
 * @example
 * ```ts
 * builtInContextWindow('gpt-4.1-2025-04-14'); // 1_047_576
 * ```
 */
export function builtInContextWindow(model: string): number | undefined {
  const name = baseModel(model);
  for (const [prefix, window] of windows) if (name.startsWith(prefix)) return window;
  return undefined;
}
