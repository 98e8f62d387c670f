import { describe, expect, it } from 'vitest';
import { errorType, providerOf, requestAttributes, serverOf, usageAttributes } from './attributes.js';
import { payloadAttributes } from './event-router.js';
import { semconvFromOptIn } from './semconv.js';

describe('serverOf', () => {
  it('gives host and port, with the scheme default port', () => {
    expect(serverOf('https://api.deepseek.com/v1')).toEqual({ address: 'api.deepseek.com', port: 443 });
    expect(serverOf('http://127.0.0.1:8080/v1')).toEqual({ address: '127.0.0.1', port: 8080 });
    expect(serverOf('http://[::1]:9000')).toEqual({ address: '::1', port: 9000 });
  });

  it('never keeps credentials a URL carries', () => {
    const server = serverOf('https://user:sk-secret@relay.example.com/v1');
    expect(JSON.stringify(server)).not.toContain('sk-secret');
    expect(server).toEqual({ address: 'relay.example.com', port: 443 });
  });

  it('gives nothing for what is not a URL', () => {
    expect(serverOf('not a url')).toEqual({ address: undefined, port: undefined });
  });
});

describe('providerOf', () => {
  it.each([
    ['api.openai.com', 'openai'],
    ['api.deepseek.com', 'deepseek'],
    ['my-team.openai.azure.com', 'azure.ai.openai'],
    ['generativelanguage.googleapis.com', 'gcp.gemini'],
    ['api.groq.com', 'groq'],
    ['api.mistral.ai', 'mistral_ai'],
    ['api.x.ai', 'x_ai'],
    ['openrouter.ai', 'openai'],
    ['127.0.0.1', 'openai'],
  ])('names %s as %s', (host, name) => {
    expect(providerOf(host)).toBe(name);
  });
});

describe('requestAttributes', () => {
  it('maps the sampling settings, prefers max_completion_tokens, and leaves out n = 1', () => {
    expect(
      requestAttributes(
        {
          model: 'm',
          messages: [{ role: 'user', content: 'x' }],
          max_tokens: 10,
          max_completion_tokens: 20,
          n: 1,
          temperature: 0,
          frequency_penalty: 0.5,
          presence_penalty: -0.5,
          seed: 7,
          stop: 'END',
          response_format: { type: 'json_object' },
        } as never,
        true,
        'v1.36',
      ),
    ).toEqual({
      'gen_ai.request.max_tokens': 20,
      'gen_ai.request.temperature': 0,
      'gen_ai.request.frequency_penalty': 0.5,
      'gen_ai.request.presence_penalty': -0.5,
      'gen_ai.request.seed': 7,
      'gen_ai.request.stop_sequences': ['END'],
      'gen_ai.output.type': 'json',
    });
  });

  it('records the choice count when it is not 1, and the stream flag in the newest conventions only', () => {
    const request = { model: 'm', messages: [{ role: 'user' as const, content: 'x' }], n: 3, temperature: null };
    expect(requestAttributes(request, true, 'latest')).toEqual({ 'gen_ai.request.choice.count': 3, 'gen_ai.request.stream': true });
  });
});

describe('usageAttributes', () => {
  const usage = {
    prompt_tokens: 100,
    completion_tokens: 20,
    total_tokens: 120,
    prompt_tokens_details: { cached_tokens: 64 },
    completion_tokens_details: { reasoning_tokens: 12 },
  };

  it('gives cache and reasoning counts in the newest conventions', () => {
    expect(usageAttributes(usage, 'latest')).toEqual({
      'gen_ai.usage.input_tokens': 100,
      'gen_ai.usage.output_tokens': 20,
      'gen_ai.usage.cache_read.input_tokens': 64,
      'gen_ai.usage.reasoning.output_tokens': 12,
    });
  });

  it('gives input and output only in v1.36, which had no others', () => {
    expect(usageAttributes(usage, 'v1.36')).toEqual({ 'gen_ai.usage.input_tokens': 100, 'gen_ai.usage.output_tokens': 20 });
  });
});

describe('errorType', () => {
  it('is the code, else the class name, else _OTHER', () => {
    expect(errorType({ code: 'RATE_LIMITED', name: 'RateLimitError' })).toBe('RATE_LIMITED');
    expect(errorType(new TypeError('x'))).toBe('TypeError');
    expect(errorType(new Error('x'))).toBe('_OTHER');
    expect(errorType('boom')).toBe('_OTHER');
  });
});

describe('semconvFromOptIn', () => {
  it('selects the newest conventions only for gen_ai_latest_experimental', () => {
    expect(semconvFromOptIn(undefined)).toBe('v1.36');
    expect(semconvFromOptIn('')).toBe('v1.36');
    expect(semconvFromOptIn('http')).toBe('v1.36');
    expect(semconvFromOptIn('gen_ai_latest_experimental')).toBe('latest');
    expect(semconvFromOptIn('database/dup, gen_ai_latest_experimental ')).toBe('latest');
  });
});

describe('payloadAttributes', () => {
  it('copies scalar fields in snake case and drops the id, tags, errors, objects and infinities', () => {
    expect(
      payloadAttributes({
        id: 'call-1',
        tags: { user: 'u' },
        error: new Error('x'),
        delayMs: 250,
        code: 'SERVER_ERROR',
        summarized: false,
        codes: ['A', 'B'],
        buckets: { input: 1 },
        openMs: Infinity,
        usd: Number.NaN,
      }),
    ).toEqual({ delay_ms: 250, code: 'SERVER_ERROR', summarized: false, codes: ['A', 'B'] });
  });
});
