/**
 * The openai SDK (v6) calling through a pipeline with `fetch: toFetch(llm)`:
 * completions, streams, tool calls, retries, errors as the SDK's own
 * classes, and an abort that reaches the upstream socket. The upstream sees
 * exactly one request per attempt sluice makes: the SDK never retries on top.
 */
import { createPipeline, openAICompatible, toFetch } from '@sluice/core';
import { retry } from '@sluice/retry';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import OpenAI from 'openai';
import { afterEach, describe, expect, it } from 'vitest';
import { heldStreamUpstream } from './socket-watch.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

async function setup(baseUrl?: string): Promise<{ upstream: MockUpstream; openai: OpenAI }> {
  const upstream = await mockUpstream({ reply: 'Hi there, friend' });
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: baseUrl ?? upstream.url, apiKey: 'sk-upstream' }) }).use(
    retry({ attempts: 3, backoff: () => 0 }),
  );
  open.push(llm, upstream);
  // The SDK's own key and base URL are only what it builds URLs from; the transport holds the real ones.
  const openai = new OpenAI({ apiKey: 'unused', baseURL: 'https://llm.invalid/v1', fetch: toFetch(llm) });
  return { upstream, openai };
}

const messages: OpenAI.ChatCompletionMessageParam[] = [{ role: 'user', content: 'Hello' }];

describe('openai SDK through toFetch', () => {
  it('completes: the SDK gets the completion, the upstream one request with its own key', async () => {
    const { upstream, openai } = await setup();
    const reply = await openai.chat.completions.create({ model: 'gpt-4.1', messages });
    expect(reply.choices[0]?.message.content).toBe('Hi there, friend');
    expect(reply.usage?.total_tokens).toBeGreaterThan(0);
    expect(upstream.requests).toHaveLength(1);
    expect(upstream.requests[0]?.headers.authorization).toBe('Bearer sk-upstream');
  });

  it('streams chunk by chunk and keeps the usage chunk the request asked for', async () => {
    const { upstream, openai } = await setup();
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', messages, stream: true, stream_options: { include_usage: true } });
    let text = '';
    let usage: OpenAI.CompletionUsage | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      usage ??= chunk.usage;
    }
    expect(text).toBe('Hi there, friend');
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(upstream.requests).toHaveLength(1);
  });

  it('hides the usage chunk from a stream that did not ask for it', async () => {
    const { openai } = await setup();
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', messages, stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((chunk) => chunk.choices.length > 0)).toBe(true);
  });

  it('carries a tool call, in a completion and in a stream', async () => {
    const { upstream, openai } = await setup();
    const tools: OpenAI.ChatCompletionTool[] = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: { city: { type: 'string' } } } } },
    ];
    const toolReply = { kind: 'ok' as const, reply: { toolCalls: [{ id: 'call_1', name: 'get_weather', arguments: { city: 'Paris' } }] } };
    upstream.enqueue(toolReply, toolReply);
    const reply = await openai.chat.completions.create({ model: 'gpt-4.1', messages, tools });
    const call = reply.choices[0]?.message.tool_calls?.[0];
    expect(call?.type === 'function' && call.function).toEqual({ name: 'get_weather', arguments: '{"city":"Paris"}' });
    expect(reply.choices[0]?.finish_reason).toBe('tool_calls');
    const runner = openai.chat.completions.stream({ model: 'gpt-4.1', messages, tools });
    const final = await runner.finalChatCompletion();
    const streamed = final.choices[0]?.message.tool_calls?.[0];
    expect(streamed?.type === 'function' && streamed.function.arguments).toBe('{"city":"Paris"}');
  });

  it('retries a 503 in sluice: one upstream request per attempt, none from the SDK', async () => {
    const { upstream, openai } = await setup();
    upstream.enqueue({ kind: 'status', status: 503 });
    const reply = await openai.chat.completions.create({ model: 'gpt-4.1', messages });
    expect(reply.choices[0]?.message.content).toBe('Hi there, friend');
    expect(upstream.requests).toHaveLength(2);
  });

  it('surfaces exhausted retries as the SDK InternalServerError, with x-should-retry: false', async () => {
    const { upstream, openai } = await setup();
    upstream.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 503 })));
    const call = openai.chat.completions.create({ model: 'gpt-4.1', messages });
    await expect(call).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(call).rejects.toMatchObject({ status: 503, headers: expect.anything() });
    const error = (await call.catch((caught: unknown) => caught)) as InstanceType<typeof OpenAI.APIError>;
    expect(error.headers?.get('x-should-retry')).toBe('false');
    // sluice's 3 attempts, not 3 × the SDK's 3.
    expect(upstream.requests).toHaveLength(3);
  });

  it('surfaces a 400 as the SDK BadRequestError with the provider code, not retried', async () => {
    const { upstream, openai } = await setup();
    upstream.enqueue({ kind: 'status', status: 400, code: 'context_length_exceeded' });
    const call = openai.chat.completions.create({ model: 'gpt-4.1', messages });
    await expect(call).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(call).rejects.toMatchObject({ status: 400, code: 'context_length_exceeded' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('surfaces a 429 as the SDK RateLimitError with retry-after', async () => {
    const { upstream, openai } = await setup();
    upstream.enqueue(...Array.from({ length: 3 }, () => ({ kind: 'status' as const, status: 429, headers: { 'retry-after': '0' } })));
    const error = (await openai.chat.completions.create({ model: 'gpt-4.1', messages }).catch((caught: unknown) => caught)) as InstanceType<
      typeof OpenAI.APIError
    >;
    expect(error).toBeInstanceOf(OpenAI.RateLimitError);
    expect(upstream.requests).toHaveLength(3);
  });

  it('aborts mid-stream: the SDK ends the stream as it does on abort and the upstream socket closes', async () => {
    const held = await heldStreamUpstream();
    open.push(held);
    const { openai } = await setup(held.url);
    const controller = new AbortController();
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', messages, stream: true }, { signal: controller.signal });
    const seen: string[] = [];
    // The SDK's stream swallows its own abort and just ends, as over a real socket.
    for await (const chunk of stream) {
      seen.push(chunk.choices[0]?.delta.content ?? '');
      if (seen.length === 2) controller.abort();
    }
    expect(seen).toEqual(['Hello', ' world']);
    await held.socketClosed(1);
    expect(held.requests).toBe(1);
  });

  it('rejects an already aborted call as the SDK abort error, sending nothing', async () => {
    const { upstream, openai } = await setup();
    const aborted = new AbortController();
    aborted.abort();
    const call = openai.chat.completions.create({ model: 'gpt-4.1', messages }, { signal: aborted.signal });
    await expect(call).rejects.toBeInstanceOf(OpenAI.APIUserAbortError);
    expect(upstream.requests).toHaveLength(0);
  });

  it('passes other endpoints through to the fallback unchanged', async () => {
    const upstream = await mockUpstream();
    open.push(upstream);
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null }) });
    open.push(llm);
    const openai = new OpenAI({ apiKey: 'k', baseURL: upstream.url, fetch: toFetch(llm), maxRetries: 0 });
    await expect(openai.models.list()).rejects.toMatchObject({ status: 404 });
    expect(upstream.requests[0]).toMatchObject({ method: 'GET', path: '/v1/models' });
  });
});
