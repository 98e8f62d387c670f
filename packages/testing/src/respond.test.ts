import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mockUpstream, type MockUpstream, type MockUpstreamOptions } from './index.js';
import { chat, post, readAll, sseChunks, sseEvents } from './test-client.js';

let upstream: MockUpstream;
async function restart(options: MockUpstreamOptions): Promise<void> {
  await upstream.close();
  upstream = await mockUpstream(options);
}
beforeEach(async () => {
  upstream = await mockUpstream();
});
afterEach(async () => {
  await upstream.close();
});

const usageShape = {
  prompt_tokens: expect.any(Number),
  completion_tokens: expect.any(Number),
  total_tokens: expect.any(Number),
  prompt_tokens_details: { cached_tokens: 0 },
  completion_tokens_details: { reasoning_tokens: 0 },
};
const streamed = (extra: Record<string, unknown> = {}) => chat('Hello there, mock', { stream: true, ...extra });
const contentOf = (chunks: Array<Record<string, unknown>>): string =>
  chunks
    .map((chunk) => (chunk['choices'] as Array<{ delta: { content?: string } }>)[0]?.delta.content ?? '')
    .join('');

describe('a successful completion', () => {
  it('is a chat.completion echoing the model and the last user message, with estimated usage', async () => {
    const body = {
      model: 'deepseek-v3.2',
      messages: [
        { role: 'system', content: 'Be brief.' },
        { role: 'user', content: [{ type: 'text', text: 'What is the capital of France?' }] },
      ],
    };
    const res = await post(upstream, body);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual({
      id: 'chatcmpl-mock-1',
      object: 'chat.completion',
      created: expect.any(Number),
      model: 'deepseek-v3.2',
      choices: [
        {
          index: 0,
          message: { role: 'assistant', content: 'Echo: What is the capital of France?', refusal: null },
          logprobs: null,
          finish_reason: 'stop',
        },
      ],
      // 39 characters of content → 10, plus 3 per message; the 36-character reply → 9.
      usage: { ...usageShape, prompt_tokens: 16, completion_tokens: 9, total_tokens: 25 },
    });
  });

  it('says what `reply` says, with usage overridable field by field', async () => {
    await restart({
      reply: (body) => ({ content: `${body.messages.length} messages`, usage: { prompt_tokens: 3_000, completion_tokens: 800 } }),
    });
    const completion = (await (await post(upstream, chat())).json()) as Record<string, unknown>;
    expect(completion).toMatchObject({
      choices: [{ message: { content: '1 messages' } }],
      usage: { prompt_tokens: 3_000, completion_tokens: 800, total_tokens: 3_800 },
    });
  });

  it('passes the parsed body and the recorded request to an async reply function', async () => {
    await restart({ reply: async (body, request) => `${body.model} ${request.headers['authorization']}` });
    const completion = (await (await post(upstream, chat())).json()) as { choices: Array<{ message: { content: string } }> };
    expect(completion.choices[0]?.message.content).toBe('gpt-4.1 Bearer sk-test');
  });

  it('carries tool calls with finish_reason tool_calls and null content', async () => {
    await restart({ reply: { toolCalls: [{ name: 'get_weather', arguments: { city: 'Paris' } }] } });
    const completion = (await (await post(upstream, chat())).json()) as Record<string, unknown>;
    expect(completion).toMatchObject({
      choices: [
        {
          message: {
            role: 'assistant',
            content: null,
            tool_calls: [{ id: 'call_mock_1_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
          },
          finish_reason: 'tool_calls',
        },
      ],
    });
  });

  it('answers 500 with the reason when the reply function throws', async () => {
    await restart({
      reply: () => {
        throw new Error('boom');
      },
    });
    const res = await post(upstream, chat());
    expect(res.status).toBe(500);
    expect(await res.json()).toMatchObject({ error: { message: expect.stringContaining('boom') } });
  });
});

describe('a successful stream', () => {
  it('sends a role chunk, one content chunk per word, a finish chunk and [DONE]', async () => {
    const res = await post(upstream, streamed());
    expect(res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const text = await res.text();
    const events = sseEvents(text);
    const chunks = sseChunks(text);
    expect(events.at(-1)).toEqual({ event: undefined, data: '[DONE]' });
    expect(chunks[0]).toEqual({
      id: 'chatcmpl-mock-1',
      object: 'chat.completion.chunk',
      created: expect.any(Number),
      model: 'gpt-4.1',
      choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }],
    });
    expect(chunks.slice(1, -1).map((chunk) => contentOf([chunk]))).toEqual(['Echo: ', 'Hello ', 'there, ', 'mock']);
    expect(chunks.at(-1)).toMatchObject({ choices: [{ delta: {}, finish_reason: 'stop' }] });
    expect(chunks.every((chunk) => !('usage' in chunk))).toBe(true);
    expect(text.endsWith('data: [DONE]\n\n')).toBe(true);
  });

  it('adds a usage chunk with no choices before [DONE] when include_usage is set', async () => {
    const text = await (await post(upstream, streamed({ stream_options: { include_usage: true } }))).text();
    const chunks = sseChunks(text);
    expect(chunks.at(-1)).toEqual({
      id: 'chatcmpl-mock-1',
      object: 'chat.completion.chunk',
      created: expect.any(Number),
      model: 'gpt-4.1',
      choices: [],
      usage: usageShape,
    });
    expect(chunks.slice(0, -1).every((chunk) => chunk['usage'] === null)).toBe(true);
    expect(sseEvents(text).at(-1)?.data).toBe('[DONE]');
  });

  it('splits the content into `chunks` pieces', async () => {
    await restart({ chunks: 3, reply: 'abcdefghi' });
    const chunks = sseChunks(await (await post(upstream, streamed())).text());
    expect(chunks.slice(1, -1).map((chunk) => contentOf([chunk]))).toEqual(['abc', 'def', 'ghi']);
  });

  it('streams tool calls as index/id/name deltas then argument fragments', async () => {
    await restart({ reply: { toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: '{"city":"Paris"}' }] } });
    const chunks = sseChunks(await (await post(upstream, streamed())).text());
    const deltas = chunks.map((chunk) => (chunk['choices'] as Array<{ delta: Record<string, unknown> }>)[0]?.delta);
    expect(deltas[1]).toEqual({
      tool_calls: [{ index: 0, id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '' } }],
    });
    const fragments = deltas
      .slice(2, -1)
      .map((delta) => (delta?.['tool_calls'] as Array<{ index: number; function: { arguments: string } }>)[0]);
    expect(fragments.length).toBeGreaterThan(1);
    expect(fragments.every((fragment) => fragment?.index === 0)).toBe(true);
    expect(fragments.map((fragment) => fragment?.function.arguments).join('')).toBe('{"city":"Paris"}');
    expect(chunks.at(-1)).toMatchObject({ choices: [{ finish_reason: 'tool_calls' }] });
  });
});

describe('faults', () => {
  it('status: sends the status, headers and an OpenAI-shaped error', async () => {
    upstream.enqueue({
      kind: 'status',
      status: 429,
      headers: { 'retry-after': '2', 'retry-after-ms': '1500', 'x-should-retry': 'true' },
    });
    const res = await post(upstream, chat());
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('2');
    expect(res.headers.get('retry-after-ms')).toBe('1500');
    expect(res.headers.get('x-should-retry')).toBe('true');
    expect(await res.json()).toEqual({
      error: { message: expect.any(String), type: 'requests', param: null, code: 'rate_limit_exceeded' },
    });
  });

  it('status: makes a 400 context_length_exceeded from its code', async () => {
    upstream.enqueue({ kind: 'status', status: 400, code: 'context_length_exceeded' });
    const res = await post(upstream, chat());
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({
      error: {
        message: expect.stringContaining('maximum context length'),
        type: 'invalid_request_error',
        param: 'messages',
        code: 'context_length_exceeded',
      },
    });
  });

  it('status: sends a body override as is, and answers a stream request the same way', async () => {
    upstream.enqueue({ kind: 'status', status: 503, body: 'upstream connect error' }, { kind: 'status', status: 401 });
    const raw = await post(upstream, chat());
    expect(raw.status).toBe(503);
    expect(await raw.text()).toBe('upstream connect error');
    const stream = await post(upstream, streamed());
    expect(stream.status).toBe(401);
    expect(await stream.json()).toMatchObject({ error: { code: 'invalid_api_key' } });
  });

  it('html: sends an HTML page, 502 by default', async () => {
    upstream.enqueue({ kind: 'html' }, { kind: 'html', status: 504, body: '<h1>timeout</h1>' });
    const page = await post(upstream, chat());
    expect(page.status).toBe(502);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await page.text()).toContain('<html>');
    const custom = await post(upstream, chat());
    expect(custom.status).toBe(504);
    expect(await custom.text()).toBe('<h1>timeout</h1>');
  });

  it('malformed: sends 200 JSON that does not parse', async () => {
    upstream.enqueue({ kind: 'malformed' });
    const res = await post(upstream, chat());
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/json');
    await expect(res.json()).rejects.toThrow(SyntaxError);
  });

  it('malformed: sends a data line that is not JSON in a stream, then ends', async () => {
    upstream.enqueue({ kind: 'malformed', afterChunks: 1 });
    const events = sseEvents(await (await post(upstream, streamed())).text());
    expect(events).toHaveLength(2);
    expect(JSON.parse(events[0]?.data ?? '')).toMatchObject({ object: 'chat.completion.chunk' });
    expect(() => JSON.parse(events[1]?.data ?? '')).toThrow(SyntaxError);
  });

  it('error-body: sends status 200 with an error object', async () => {
    upstream.enqueue({ kind: 'error-body', message: 'Provider returned error', code: 'provider_error' });
    const res = await post(upstream, streamed());
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({
      error: { message: 'Provider returned error', type: 'server_error', param: null, code: 'provider_error' },
    });
  });

  it('reset: destroys the connection before headers', async () => {
    upstream.enqueue({ kind: 'reset' });
    await expect(post(upstream, chat())).rejects.toMatchObject({ cause: { code: 'ECONNRESET' } });
    expect(upstream.requests).toHaveLength(1);
  });

  it('reset mid-stream: sends headers and afterChunks chunks, then destroys the connection', async () => {
    upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 3 });
    const res = await post(upstream, streamed());
    expect(res.status).toBe(200);
    const { text, error } = await readAll(res);
    expect(error).toBeInstanceOf(Error);
    expect(sseChunks(text)).toHaveLength(3);
    expect(text).not.toContain('[DONE]');
  });

  it('reset mid-stream: with no chunks, still sends the headers first', async () => {
    upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 0 });
    const res = await post(upstream, streamed());
    expect(res.status).toBe(200);
    expect(await readAll(res)).toEqual({ text: '', error: expect.any(Error) });
  });

  it('reset mid-stream: cuts a JSON answer inside its body', async () => {
    upstream.enqueue({ kind: 'reset', at: 'mid-stream' });
    const res = await post(upstream, chat());
    expect(res.status).toBe(200);
    const { text, error } = await readAll(res);
    expect(error).toBeInstanceOf(Error);
    expect(text.length).toBeGreaterThan(0);
  });

  it('cut: ends the stream cleanly after afterChunks chunks, without usage or [DONE]', async () => {
    upstream.enqueue({ kind: 'cut', afterChunks: 2 });
    const res = await post(upstream, streamed({ stream_options: { include_usage: true } }));
    const { text, error } = await readAll(res);
    expect(error).toBeUndefined();
    expect(sseEvents(text)).toHaveLength(2);
    expect(text).not.toContain('[DONE]');
    expect(sseChunks(text).every((chunk) => chunk['usage'] === null)).toBe(true);
  });

  it('cut: ends a JSON answer cleanly halfway', async () => {
    upstream.enqueue({ kind: 'cut' });
    const res = await post(upstream, chat());
    const { text, error } = await readAll(res);
    expect(error).toBeUndefined();
    expect(text.startsWith('{"id":"chatcmpl-mock-1"')).toBe(true);
    expect(() => JSON.parse(text)).toThrow(SyntaxError);
  });

  it('sse-error: sends event: error with an error payload after afterChunks chunks, then ends', async () => {
    upstream.enqueue({ kind: 'sse-error', afterChunks: 2, code: 'server_overloaded', message: 'Overloaded' });
    const events = sseEvents(await (await post(upstream, streamed())).text());
    expect(events).toHaveLength(3);
    expect(events[2]?.event).toBe('error');
    expect(JSON.parse(events[2]?.data ?? '')).toEqual({
      error: { message: 'Overloaded', type: 'server_error', param: null, code: 'server_overloaded' },
    });
  });

  it('sse-error: can send the OpenAI style of a bare data: {"error"} line', async () => {
    upstream.enqueue({ kind: 'sse-error', style: 'data', afterChunks: 0 });
    const events = sseEvents(await (await post(upstream, streamed())).text());
    expect(events).toEqual([{ event: undefined, data: expect.stringMatching(/^\{"error":\{/) }]);
  });

  it('sse-error: answers a JSON request like error-body', async () => {
    upstream.enqueue({ kind: 'sse-error' });
    const res = await post(upstream, chat());
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ error: { type: 'server_error' } });
  });

  it('hang: never answers until the client aborts', async () => {
    upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const pending = post(upstream, chat(), { signal: controller.signal });
    await upstream.waitForRequests(1);
    // A normal request on another connection completes while the first one hangs.
    expect((await post(upstream, chat())).status).toBe(200);
    controller.abort();
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('raw: sends its own JSON body with status 200, as is or made from the normal completion', async () => {
    upstream.enqueue(
      { kind: 'raw', body: { id: 'x', object: 'chat.completion', choices: [null] } },
      { kind: 'raw', body: (completion) => ({ ...completion, choices: 'not an array' }) },
      { kind: 'raw', body: '{"choices":[{}]}' },
    );
    const given = await post(upstream, chat());
    expect(given.status).toBe(200);
    expect(given.headers.get('content-type')).toBe('application/json');
    expect(await given.json()).toEqual({ id: 'x', object: 'chat.completion', choices: [null] });
    expect(await (await post(upstream, chat())).json()).toMatchObject({ id: 'chatcmpl-mock-2', choices: 'not an array', usage: usageShape });
    expect(await (await post(upstream, chat())).text()).toBe('{"choices":[{}]}');
  });

  it('raw: sends its own stream payloads, objects as JSON and strings as is, then [DONE] unless done is false', async () => {
    upstream.enqueue(
      { kind: 'raw', chunks: [{ choices: [{ delta: null }] }, '{"choices":[{"message":{"content":"Hi"}}]}'] },
      { kind: 'raw', chunks: (chunks) => [chunks[0] ?? {}, { ...chunks[1], choices: [{}] }], done: false },
    );
    const given = sseEvents(await (await post(upstream, streamed())).text());
    expect(given).toEqual([
      { event: undefined, data: '{"choices":[{"delta":null}]}' },
      { event: undefined, data: '{"choices":[{"message":{"content":"Hi"}}]}' },
      { event: undefined, data: '[DONE]' },
    ]);
    const made = await (await post(upstream, streamed())).text();
    expect(sseChunks(made)).toEqual([
      expect.objectContaining({ choices: [expect.objectContaining({ delta: { role: 'assistant', content: '' } })] }),
      expect.objectContaining({ id: 'chatcmpl-mock-2', object: 'chat.completion.chunk', choices: [{}] }),
    ]);
    expect(made).not.toContain('[DONE]');
  });

  it('raw: answers normally the request kind it has nothing for', async () => {
    upstream.enqueue({ kind: 'raw', chunks: ['{}'] }, { kind: 'raw', body: {} });
    expect(await (await post(upstream, chat())).json()).toMatchObject({ choices: [{ message: { content: 'Echo: Hello there, mock' } }] });
    expect(contentOf(sseChunks(await (await post(upstream, streamed())).text()))).toBe('Echo: Hello there, mock');
  });

  it('usage: sends exactly the usage given, in the JSON body and in the stream usage chunk', async () => {
    const odd = [{ prompt_tokens: 'abc', completion_tokens: -5, total_tokens: null }, 'lots', null];
    upstream.enqueue(...odd.map((usage) => ({ kind: 'usage' as const, usage })), { kind: 'usage', usage: { prompt_tokens: -5 } });
    for (const usage of odd) {
      const completion = (await (await post(upstream, chat())).json()) as Record<string, unknown>;
      expect(completion['usage']).toEqual(usage);
      expect(completion).toMatchObject({ choices: [{ message: { content: 'Echo: Hello there, mock' } }] });
    }
    const chunks = sseChunks(await (await post(upstream, streamed({ stream_options: { include_usage: true } }))).text());
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { prompt_tokens: -5 } });
    expect(chunks.slice(0, -1).every((chunk) => chunk['usage'] === null)).toBe(true);
  });

  it('usage: leaves the field out when the usage given is undefined', async () => {
    upstream.enqueue({ kind: 'usage', usage: undefined });
    expect(await (await post(upstream, chat())).json()).not.toHaveProperty('usage');
  });

  it('ok: answers with its own scripted reply once', async () => {
    upstream.enqueue({ kind: 'ok', reply: 'scripted' });
    const first = (await (await post(upstream, chat())).json()) as { choices: Array<{ message: { content: string } }> };
    const second = (await (await post(upstream, chat('again'))).json()) as typeof first;
    expect(first.choices[0]?.message.content).toBe('scripted');
    expect(second.choices[0]?.message.content).toBe('Echo: again');
  });
});
