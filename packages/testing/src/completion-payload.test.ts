import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { completionChunks, splitText } from './completion-payload.js';
import type { ResolvedReply } from './resolve-reply.js';

const meta = { id: 'chatcmpl-mock-1', created: 1, model: 'm' };
const reply = (content: string | null, toolCalls: ResolvedReply['toolCalls'] = []): ResolvedReply => ({
  content,
  toolCalls,
  finishReason: toolCalls.length > 0 ? 'tool_calls' : 'stop',
  usage: {
    prompt_tokens: 1,
    completion_tokens: 1,
    total_tokens: 2,
    prompt_tokens_details: { cached_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  },
});

describe('splitText', () => {
  it('splits after each run of whitespace by default', () => {
    expect(splitText('Echo: hello  world', undefined)).toEqual(['Echo: ', 'hello  ', 'world']);
    expect(splitText('one', undefined)).toEqual(['one']);
    expect(splitText('', undefined)).toEqual([]);
  });

  it('splits into near-equal pieces, never more than the characters', () => {
    expect(splitText('abcdef', 4)).toEqual(['a', 'bc', 'd', 'ef']);
    expect(splitText('ab', 10)).toEqual(['a', 'b']);
    expect(splitText('😀😀', 2)).toEqual(['😀', '😀']);
  });

  it('always gives back the text when joined, however it splits', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'grapheme' }), fc.option(fc.integer({ min: 1, max: 50 }), { nil: undefined }), (text, pieces) => {
        const slices = splitText(text, pieces);
        expect(slices.join('')).toBe(text);
        expect(slices.every((slice) => slice !== '')).toBe(true);
        if (pieces !== undefined && text !== '') expect(slices.length).toBe(Math.min(pieces, Array.from(text).length));
      }),
    );
  });
});

describe('completionChunks', () => {
  it('ends with the finish chunk, or the usage chunk when asked', () => {
    expect(completionChunks(meta, reply('hi'), undefined, false).at(-1)).toMatchObject({
      choices: [{ delta: {}, finish_reason: 'stop' }],
    });
    expect(completionChunks(meta, reply('hi'), undefined, true).at(-1)).toMatchObject({ choices: [], usage: { total_tokens: 2 } });
  });

  it('sends no content delta for empty or null content', () => {
    expect(completionChunks(meta, reply(null), undefined, false)).toHaveLength(2);
    expect(completionChunks(meta, reply(''), undefined, false)).toHaveLength(2);
  });

  it('gives each tool call its own index', () => {
    const calls = [
      { id: 'a', type: 'function' as const, function: { name: 'f', arguments: '{}' } },
      { id: 'b', type: 'function' as const, function: { name: 'g', arguments: '{}' } },
    ];
    const heads = completionChunks(meta, reply(null, calls), undefined, false)
      .map((chunk) => (chunk as { choices: Array<{ delta: { tool_calls?: Array<{ index: number; id?: string }> } }> }).choices[0])
      .flatMap((choice) => choice?.delta.tool_calls ?? [])
      .filter((call) => call.id !== undefined);
    expect(heads).toMatchObject([
      { index: 0, id: 'a' },
      { index: 1, id: 'b' },
    ]);
  });
});
