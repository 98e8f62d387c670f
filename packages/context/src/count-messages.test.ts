import type { ChatMessage, ToolDefinition } from '@sluice/core';
import { describe, expect, it, vi } from 'vitest';
import { countMessages } from './count-messages.js';
import { countTokens } from './count-tokens.js';
import { dataUrlImageSize, tiledImageTokens, unknownImageTokens } from './image-tokens.js';
import type { Tokenizer } from './tokenizer.js';

// The worked example of OpenAI's cookbook "How to count tokens with tiktoken", section 6.
const cookbookMessages: ChatMessage[] = [
  {
    role: 'system',
    content: 'You are a helpful, pattern-following assistant that translates corporate jargon into plain English.',
  },
  { role: 'system', name: 'example_user', content: 'New synergies will help drive top-line growth.' },
  { role: 'system', name: 'example_assistant', content: 'Things working well together will increase revenue.' },
  {
    role: 'system',
    name: 'example_user',
    content: "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage.",
  },
  { role: 'system', name: 'example_assistant', content: "Let's talk later when we're less busy about how to do better." },
  { role: 'user', content: "This late pivot means we don't have time to boil the ocean for the client deliverable." },
];

// Section 7: the same with a tool definition.
const cookbookTools: ToolDefinition[] = [
  {
    type: 'function',
    function: {
      name: 'get_current_weather',
      description: 'Get the current weather in a given location',
      parameters: {
        type: 'object',
        properties: {
          location: { type: 'string', description: 'The city and state, e.g. San Francisco, CA' },
          unit: { type: 'string', description: 'The unit of temperature to return', enum: ['celsius', 'fahrenheit'] },
        },
        required: ['location'],
      },
    },
  },
];
const weatherMessages: ChatMessage[] = [
  { role: 'system', content: 'You are a helpful assistant that can answer to questions about the weather.' },
  { role: 'user', content: "What's the weather like in San Francisco?" },
];

describe('countMessages', () => {
  it.each([
    ['gpt-3.5-turbo', 129],
    ['gpt-4-0613', 129],
    ['gpt-4', 129],
    ['gpt-4o', 124],
    ['gpt-4o-mini', 124],
    ['gpt-3.5-turbo-0301', 127],
  ])('gives the prompt_tokens the API reported for the cookbook chat on %s (%i)', (model, promptTokens) => {
    expect(countMessages(cookbookMessages, model)).toEqual({ tokens: promptTokens, approximate: false });
  });

  it.each([
    ['gpt-3.5-turbo', 105],
    ['gpt-4', 105],
    ['gpt-4o', 101],
    ['gpt-4o-mini', 101],
  ])('gives the prompt_tokens the API reported for the cookbook tools example on %s (%i), flagged approximate', (model, promptTokens) => {
    expect(countMessages(weatherMessages, model, { tools: cookbookTools })).toEqual({ tokens: promptTokens, approximate: true });
  });

  it('adds the same framing to every model, approximate for those without a public tokenizer', () => {
    const counted = countMessages([{ role: 'user', content: 'Hello there' }], 'claude-sonnet-4.5');
    expect(counted.approximate).toBe(true);
    expect(counted.tokens).toBe(3 + countTokens('user', 'claude-sonnet-4.5').tokens + countTokens('Hello there', 'claude-sonnet-4.5').tokens + 3);
  });

  it('counts a single text part as the same text in a string', () => {
    const asString = countMessages([{ role: 'user', content: 'Describe this.' }], 'gpt-4o');
    const asPart = countMessages([{ role: 'user', content: [{ type: 'text', text: 'Describe this.' }] }], 'gpt-4o');
    expect(asPart).toEqual(asString);
  });

  it('estimates images by detail: 85 low, 85 + 170 a tile otherwise, the most tiles when the size is unknown', () => {
    const text = countMessages([{ role: 'user', content: [{ type: 'text', text: 'What is in it?' }] }], 'gpt-4o').tokens;
    const withImage = (url: string, detail?: 'low' | 'high' | 'auto') =>
      countMessages(
        [{ role: 'user', content: [{ type: 'text', text: 'What is in it?' }, { type: 'image_url', image_url: { url, ...(detail ? { detail } : {}) } }] }],
        'gpt-4o',
      );
    expect(withImage('https://example.com/cat.png', 'low')).toEqual({ tokens: text + 85, approximate: true });
    expect(withImage('https://example.com/cat.png', 'high').tokens).toBe(text + unknownImageTokens);
    expect(unknownImageTokens).toBe(1_445);
    expect(withImage(pngDataUrl(1024, 1024), 'high').tokens).toBe(text + 765);
    expect(withImage(pngDataUrl(2048, 4096)).tokens).toBe(text + 1_105);
    expect(withImage(pngDataUrl(200, 100), 'auto').tokens).toBe(text + 255);
  });

  it('counts assistant tool calls and tool results, flagged approximate', () => {
    const call: ChatMessage = {
      role: 'assistant',
      content: null,
      tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_current_weather', arguments: '{"location":"Paris"}' } }],
    };
    const result: ChatMessage = { role: 'tool', tool_call_id: 'call_1', content: '22°C and sunny' };
    const base = countMessages(weatherMessages, 'gpt-4o').tokens;
    const counted = countMessages([...weatherMessages, call, result], 'gpt-4o');
    expect(counted.approximate).toBe(true);
    const texts = ['assistant', 'get_current_weather', '{"location":"Paris"}', 'tool', 'call_1', '22°C and sunny'];
    const textTokens = texts.reduce((sum, text) => sum + countTokens(text, 'gpt-4o').tokens, 0);
    expect(counted.tokens).toBe(base + 3 + 3 + 10 + textTokens);
  });

  it('encodes only new turns when a conversation grows', () => {
    const count = vi.fn((text: string) => text.length);
    const spy: Tokenizer = { name: 'spy', approximate: false, count };
    const history: ChatMessage[] = [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Question one' },
      { role: 'assistant', content: 'Answer one' },
    ];
    countMessages(history, 'gpt-4o', { tokenizer: spy });
    count.mockClear();
    countMessages([...history, { role: 'user', content: 'Question two' }], 'gpt-4o', { tokenizer: spy });
    expect(count.mock.calls.map(([text]) => text)).toEqual(['Question two']);
  });

  it('rejects messages that are not an array', () => {
    expect(() => countMessages('hi' as unknown as ChatMessage[], 'gpt-4o')).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });

  it('names a message that is not an object, instead of a TypeError', () => {
    const messages = [{ role: 'user', content: 'hi' }, null] as unknown as ChatMessage[];
    expect(() => countMessages(messages, 'gpt-4o')).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'messages.1', message: 'messages.1: must be a chat message object, got null' }));
    expect(() => countMessages(['hi'] as unknown as ChatMessage[], 'gpt-4o')).toThrow(expect.objectContaining({ field: 'messages.0' }));
  });

  it('names the field of a message, a tool or a model it cannot count, instead of a TypeError', () => {
    const bad = (messages: unknown, model: unknown = 'gpt-4o', options: object = {}) => () =>
      countMessages(messages as ChatMessage[], model as string, options);
    // Before, each of these threw "TypeError: Cannot read properties of undefined".
    expect(bad([{ role: 'user', content: [{ type: 'text' }] }])).toThrow(expect.objectContaining({ code: 'VALIDATION', field: expect.stringMatching(/^messages\.0\.content/) }));
    expect(bad([{ role: 'tool', content: 'x' }])).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'messages.0.tool_call_id' }));
    expect(bad([{ role: 'assistant', content: null, tool_calls: [{ type: 'function' }] }])).toThrow(expect.objectContaining({ code: 'VALIDATION', field: expect.stringMatching(/^messages\.0\.tool_calls\.0/) }));
    expect(bad([{ role: 7, content: 'x' }])).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'messages.0.role' }));
    expect(bad([{ role: 'user', content: 'x' }], { tools: [{ type: 'function' }] } as never)).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'model' }));
    expect(bad([{ role: 'user', content: 'x' }], 'gpt-4o', { tools: [{ type: 'function' }] })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: expect.stringMatching(/^options\.tools\.0/) }));
    expect(() => countTokens('hi', null as unknown as string)).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'model', message: 'model: must be a model name, got null' }));
    // What it can count is counted as before.
    expect(countMessages([{ role: 'user', content: 'x' }], 'gpt-4o').tokens).toBeGreaterThan(0);
  });
});

describe('image sizes', () => {
  it('reads PNG, GIF, JPEG and WebP headers of data URLs', () => {
    expect(dataUrlImageSize(pngDataUrl(640, 480))).toEqual({ width: 640, height: 480 });
    const gif = Buffer.from([...Buffer.from('GIF89a'), 0x20, 0x03, 0x58, 0x02, 0, 0, 0, 0]);
    expect(dataUrlImageSize(`data:image/gif;base64,${gif.toString('base64')}`)).toEqual({ width: 800, height: 600 });
    const jpeg = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x04, 0x00, 0x00, 0xff, 0xc0, 0x00, 0x11, 0x08, 0x01, 0xe0, 0x02, 0x80, 0x03, 0, 0, 0, 0]);
    expect(dataUrlImageSize(`data:image/jpeg;base64,${jpeg.toString('base64')}`)).toEqual({ width: 640, height: 480 });
    const webp = Buffer.alloc(30);
    webp.write('RIFF', 0);
    webp.write('WEBPVP8X', 8);
    webp.writeUIntLE(1919, 24, 3);
    webp.writeUIntLE(1079, 27, 3);
    expect(dataUrlImageSize(`data:image/webp;base64,${webp.toString('base64')}`)).toEqual({ width: 1920, height: 1080 });
  });

  it('gives up on what it cannot read', () => {
    expect(dataUrlImageSize('https://example.com/a.png')).toBeUndefined();
    expect(dataUrlImageSize('data:image/png;base64,!!!not base64')).toBeUndefined();
    expect(dataUrlImageSize('data:image/svg+xml,<svg/>')).toBeUndefined();
  });

  it('tiles like OpenAI: fit in 2048, shorter side to 768, 512 px tiles', () => {
    expect(tiledImageTokens(1024, 1024)).toBe(765);
    expect(tiledImageTokens(2048, 4096)).toBe(1_105);
    expect(tiledImageTokens(4096, 8192)).toBe(1_105);
    expect(tiledImageTokens(512, 512)).toBe(255);
  });
});

function pngDataUrl(width: number, height: number): string {
  const header = Buffer.alloc(33);
  Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]).copy(header, 0);
  header.writeUInt32BE(13, 8);
  header.write('IHDR', 12);
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  return `data:image/png;base64,${header.toString('base64')}`;
}
