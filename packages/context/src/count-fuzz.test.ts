import type { ChatMessage } from '@sluice/core';
import { SluiceError } from '@sluice/core';
import { seededRandom } from '@sluice/testing';
import { describe, expect, it } from 'vitest';
import { countMessages } from './count-messages.js';
import { countTokens } from './count-tokens.js';

/**
 * Random chats, most of them malformed, through the public counters: each
 * either counts (a finite number of tokens, at least 0) or fails
 * `VALIDATION` naming a field; never a TypeError from inside.
 */
describe('countMessages and countTokens on random chats', () => {
  it('count or name the field, whatever the chat', () => {
    const random = seededRandom(17);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const text = () => {
      let out = '';
      for (let i = Math.floor(random() * 30); i > 0; i--) out += pick(['a', ' ', '\n', '你', '😀', '\ud800', '\udc00', '\u0000', '<|endoftext|>', 'é', 'ab'.repeat(20)]);
      return out;
    };
    const odd = () => pick<unknown>([null, undefined, 0, -1, 1e308, Number.NaN, 'x', '', [], {}, true, [1], { a: 1 }, text()]);
    const part = () =>
      pick<unknown>([
        { type: 'text', text: text() },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${'A'.repeat(Math.floor(random() * 80))}`, detail: pick(['low', 'high', 'auto', 'odd', undefined]) } },
        { type: 'refusal', refusal: text() },
        { type: 'text' },
        { type: odd() },
        odd(),
      ]);
    const message = (): unknown => {
      if (random() < 0.05) return odd();
      const built: Record<string, unknown> = { role: pick<unknown>(['system', 'developer', 'user', 'assistant', 'tool', odd()]) };
      const content = random();
      built.content = content < 0.5 ? text() : content < 0.8 ? Array.from({ length: Math.floor(random() * 4) }, part) : content < 0.9 ? null : odd();
      if (random() < 0.2) built.tool_calls = Array.from({ length: Math.floor(random() * 3) }, () => pick<unknown>([{ id: 'c', type: 'function', function: { name: text(), arguments: text() } }, { type: 'function' }, odd()]));
      if (random() < 0.1) built.name = pick<unknown>([text(), odd()]);
      if (random() < 0.1) built.tool_call_id = pick<unknown>([text(), odd()]);
      return built;
    };
    const outcomes = { counted: 0, named: 0 };
    const wrong: unknown[] = [];
    const check = (count: () => { tokens: number }) => {
      try {
        const { tokens } = count();
        if (!(Number.isFinite(tokens) && tokens >= 0)) wrong.push(tokens);
        outcomes.counted++;
      } catch (error) {
        // Before, about half the malformed chats threw "TypeError: Cannot read properties of undefined".
        if (!SluiceError.is(error) || error.code !== 'VALIDATION' || typeof (error as { field?: unknown }).field !== 'string') wrong.push(error);
        else outcomes.named++;
      }
    };
    for (let i = 0; i < 2_000; i++) {
      const messages = Array.from({ length: Math.floor(random() * 5) }, message) as ChatMessage[];
      const model = pick<unknown>(['gpt-4o', 'gpt-4.1', 'gpt-3.5-turbo-0301', 'claude-sonnet-4.5', 'unknown-model', '', odd()]) as string;
      check(() => countMessages(messages, model));
      check(() => countTokens(text(), model));
    }
    expect(wrong).toEqual([]);
    expect(outcomes.counted).toBeGreaterThan(1_000);
    expect(outcomes.named).toBeGreaterThan(500);
  });
});
