import { describe, expect, it } from 'vitest';
import { contentText, estimatePromptTokens, parseChatRequest } from './chat-request-body.js';

describe('parseChatRequest', () => {
  it('accepts a body with a model and messages, keeping unknown fields', () => {
    expect(parseChatRequest('{"model":"m","messages":[],"temperature":0}')).toEqual({
      ok: true,
      body: { model: 'm', messages: [], temperature: 0 },
    });
  });

  it.each([
    ['not JSON', '{', null],
    ['not an object', '[1]', null],
    ['without a model', '{"messages":[]}', 'model'],
    ['without messages', '{"model":"m"}', 'messages'],
    ['with a message that is not an object', '{"model":"m","messages":["hi"]}', 'messages'],
  ])('rejects a body %s', (_name, raw, param) => {
    expect(parseChatRequest(raw)).toMatchObject({ ok: false, error: { error: { type: 'invalid_request_error', param } } });
  });
});

describe('estimatePromptTokens', () => {
  it('counts a token per 4 characters of content plus 3 per message', () => {
    const body = {
      model: 'm',
      messages: [
        { role: 'system', content: 'abcd' },
        { role: 'user', content: [{ type: 'text', text: 'efgh' }, { type: 'image_url', image_url: { url: 'x' } }] },
        { role: 'assistant', content: null },
      ],
    };
    expect(estimatePromptTokens(body)).toBe(2 + 9);
  });

  it('reads text parts only', () => {
    expect(contentText([{ type: 'text', text: 'a' }, { type: 'text', text: 'b' }, 3])).toBe('ab');
    expect(contentText(undefined)).toBe('');
  });
});
