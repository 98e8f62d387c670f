import { describe, expect, it } from 'vitest';
import { errorBody, openAIError } from './openai-error.js';

describe('openAIError', () => {
  it('uses the real API type and code for a status', () => {
    expect(openAIError(429)).toEqual({
      error: { message: expect.any(String), type: 'requests', param: null, code: 'rate_limit_exceeded' },
    });
    expect(openAIError(503).error).toMatchObject({ type: 'server_error', code: null });
    expect(openAIError(401).error.code).toBe('invalid_api_key');
  });

  it('takes a message and a code, and a null code sends none', () => {
    expect(openAIError(400, 'Too long', 'context_length_exceeded')).toEqual({
      error: { message: 'Too long', type: 'invalid_request_error', param: 'messages', code: 'context_length_exceeded' },
    });
    expect(openAIError(429, 'Slow down', null).error).toMatchObject({ message: 'Slow down', code: null });
  });

  it('falls back on the status text for a status it does not know', () => {
    expect(openAIError(418).error).toMatchObject({ message: "I'm a Teapot", type: 'invalid_request_error' });
    expect(openAIError(599).error).toMatchObject({ message: 'Upstream error 599', type: 'server_error' });
  });

  it('lets every field be overridden', () => {
    expect(errorBody({ status: 400, message: 'm', type: 't', code: 'c', param: 'p' })).toEqual({
      error: { message: 'm', type: 't', param: 'p', code: 'c' },
    });
  });
});
