import { BadRequestError, ConnectionError, MalformedResponseError, ServerError } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { failureLine, parseBatchLine, successLine } from './batch-line.js';

const body = { model: 'gpt-4.1', messages: [{ role: 'user', content: 'hi' }] };

describe('parseBatchLine', () => {
  it('reads a Batch API input line', () => {
    expect(parseBatchLine(JSON.stringify({ custom_id: 'r1', method: 'POST', url: '/v1/chat/completions', body }))).toEqual({
      ok: true,
      request: { customId: 'r1', body },
    });
  });

  it.each([
    ['not JSON', '{"custom_id": ', 'not JSON'],
    ['an array', '[1]', 'not a JSON object'],
    ['no custom_id', JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body }), 'custom_id'],
    ['an empty custom_id', JSON.stringify({ custom_id: '', body }), 'custom_id'],
    ['a GET', JSON.stringify({ custom_id: 'x', method: 'GET', url: '/v1/chat/completions', body }), 'method must be POST'],
    ['another endpoint', JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/embeddings', body }), '/v1/embeddings'],
    ['no body', JSON.stringify({ custom_id: 'x', method: 'POST', url: '/v1/chat/completions' }), 'body must be'],
    ['no model', JSON.stringify({ custom_id: 'x', body: { messages: [] } }), 'body.model'],
    ['a stream', JSON.stringify({ custom_id: 'x', body: { ...body, stream: true } }), 'stream'],
  ])('refuses %s, saying why', (_name, text, reason) => {
    const parsed = parseBatchLine(text);
    expect(parsed.ok).toBe(false);
    expect(parsed.ok ? '' : parsed.reason).toContain(reason);
  });
});

describe('output lines', () => {
  const completion = {
    id: 'chatcmpl-1', object: 'chat.completion' as const, created: 1, model: 'gpt-4.1',
    choices: [{ index: 0, message: { role: 'assistant' as const, content: 'hello', refusal: null }, finish_reason: 'stop' as const, logprobs: null }],
  };

  it('writes a success in the Batch API shape, with the upstream request id', () => {
    const line = JSON.parse(successLine('r1', completion, { 'x-request-id': 'req_abc' }));
    expect(line).toEqual({
      id: expect.stringMatching(/^batch_req_[0-9a-f]{24}$/),
      custom_id: 'r1',
      response: { status_code: 200, request_id: 'req_abc', body: completion },
      error: null,
    });
  });

  it('writes an upstream error with its status and an OpenAI-shaped body', () => {
    const error = new BadRequestError('400 bad', { headers: { 'x-request-id': 'req_x' }, providerCode: 'invalid_value' });
    expect(JSON.parse(failureLine('r1', error))).toEqual({
      id: expect.stringMatching(/^batch_req_/),
      custom_id: 'r1',
      response: { status_code: 400, request_id: 'req_x', body: { error: { message: '400 bad', type: null, param: null, code: 'invalid_value' } } },
      error: { code: 'BAD_REQUEST', message: '400 bad' },
    });
  });

  it('writes response null when no error status came back', () => {
    expect(JSON.parse(failureLine('r1', new ConnectionError('reset')))).toMatchObject({ response: null, error: { code: 'CONNECTION' } });
    expect(JSON.parse(failureLine('r1', new MalformedResponseError('not JSON', { status: 200 })))).toMatchObject({
      response: null,
      error: { code: 'MALFORMED_RESPONSE' },
    });
  });

  it('adds the attempts to the message of a call retried to exhaustion', () => {
    const line = JSON.parse(failureLine('r1', new ServerError('503 busy', { status: 503 }), '3 attempts failed: SERVER_ERROR, SERVER_ERROR, SERVER_ERROR'));
    expect(line.error).toEqual({ code: 'SERVER_ERROR', message: '503 busy (3 attempts failed: SERVER_ERROR, SERVER_ERROR, SERVER_ERROR)' });
    expect(line.response.status_code).toBe(503);
  });
});
