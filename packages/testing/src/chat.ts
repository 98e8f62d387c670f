import type { ChatCompletionRequest } from '@sluice/core';

/**
 * A minimal request: one user message saying `content` to `gpt-4.1`
 * (the mock upstream echoes it back), with `extra` merged over it.
 *
 * @param content - the user message
 * @param extra - fields to add or replace (`model`, `stream`, `max_tokens`, …)
 * @example
 * ```ts
 * await llm.complete(chat('Hi', { model: 'deepseek-v3.2' }));
 * ```
 */
export function chat(content = 'Hello there', extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest {
  return { model: 'gpt-4.1', messages: [{ role: 'user', content }], ...extra };
}
