import type { ToolDefinition } from '@sluice/core';
import type { Encoding } from './encodings.js';
import { cachedCount } from './token-cache.js';
import type { Tokenizer } from './tokenizer.js';

/*
 * OpenAI renders tool definitions into the prompt in a format it does not
 * publish. This is the approximation of the OpenAI cookbook ("How to count
 * tokens with tiktoken", section 7), which matches the API on its worked
 * example (101 tokens for gpt-4o, 105 for gpt-4): per function 7 tokens
 * (10 on cl100k models) plus `name:description`; 3 tokens to open the
 * properties, per property 3 plus `key:type:description`, an enum −3 plus
 * 3 and the item per value; 12 to close. Descriptions lose one trailing
 * period. Schema keywords the formula does not know (nested `properties`,
 * `items`, `anyOf`…) are counted as their JSON, which errs high.
 */

const known = new Set(['type', 'description', 'enum']);

/**
 * Estimated prompt tokens of a request's `tools`.
 *
 * @param tools - the tool definitions
 * @param tokenizer - counts the text lines
 * @param encoding - the model's encoding (`cl100k_base` models open each function with 10 tokens, others 7)
 * @example
 * ```ts
 * toolDefinitionTokens(tools, tokenizerFor('gpt-4o'), 'o200k_base');
 * ```
 */
export function toolDefinitionTokens(
  tools: readonly ToolDefinition[],
  tokenizer: Tokenizer,
  encoding: Encoding | undefined,
): number {
  if (tools.length === 0) return 0;
  const count = (text: string) => cachedCount(tokenizer, text).tokens;
  let total = 12;
  for (const tool of tools) {
    // A custom tool has a name and description but no parameters to count.
    const fn: { name: string; description?: string; parameters?: Record<string, unknown> } =
      tool.type === 'custom' ? tool.custom : tool.function;
    total += encoding === 'cl100k_base' ? 10 : 7;
    total += count(`${fn.name}:${withoutPeriod(fn.description ?? '')}`);
    const properties = fn.parameters?.['properties'];
    if (!isRecord(properties) || Object.keys(properties).length === 0) continue;
    total += 3;
    for (const [key, value] of Object.entries(properties)) {
      const schema = isRecord(value) ? value : {};
      total += 3;
      if (Array.isArray(schema['enum'])) {
        total -= 3;
        for (const item of schema['enum']) total += 3 + count(String(item));
      }
      const type = Array.isArray(schema['type']) ? schema['type'].join('|') : String(schema['type'] ?? '');
      total += count(`${key}:${type}:${withoutPeriod(String(schema['description'] ?? ''))}`);
      const rest = Object.entries(schema).filter(([name]) => !known.has(name));
      if (rest.length > 0) total += count(JSON.stringify(Object.fromEntries(rest)));
    }
  }
  return total;
}

function withoutPeriod(text: string): string {
  return text.endsWith('.') ? text.slice(0, -1) : text;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
