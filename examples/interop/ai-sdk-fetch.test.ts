/**
 * The AI SDK (v6) calling through a pipeline with `fetch: toFetch(llm)`,
 * with `@ai-sdk/openai`'s chat models and `@ai-sdk/openai-compatible`:
 * text, streams, tool calls, retries, errors as `APICallError`, and an
 * abort that reaches the upstream socket. One upstream request per attempt
 * sluice makes.
 */
import { createOpenAI } from '@ai-sdk/openai';
import { createOpenAICompatible } from '@ai-sdk/openai-compatible';
import { createPipeline, type FetchFunction, openAICompatible, toFetch } from '@sluice/core';
import { retry } from '@sluice/retry';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { APICallError, generateText, jsonSchema, type LanguageModel, streamText, tool } from 'ai';
import { afterEach, describe, expect, it } from 'vitest';
import { heldStreamUpstream } from './socket-watch.js';

const open: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

const providers: Array<[name: string, model: (fetch: FetchFunction) => LanguageModel]> = [
  ['@ai-sdk/openai chat', (fetch) => createOpenAI({ apiKey: 'unused', baseURL: 'https://llm.invalid/v1', fetch }).chat('gpt-4.1')],
  [
    '@ai-sdk/openai-compatible',
    (fetch) => createOpenAICompatible({ name: 'relay', baseURL: 'https://llm.invalid/v1', fetch, includeUsage: true }).chatModel('gpt-4.1'),
  ],
];

async function setup(make: (fetch: FetchFunction) => LanguageModel, baseUrl?: string): Promise<{ upstream: MockUpstream; model: LanguageModel }> {
  const upstream = await mockUpstream({ reply: 'Hi there, friend' });
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: baseUrl ?? upstream.url, apiKey: 'sk-upstream' }) }).use(
    retry({ attempts: 3, backoff: () => 0 }),
  );
  open.push(llm, upstream);
  return { upstream, model: make(toFetch(llm)) };
}

const weather = tool({
  description: 'The weather in a city',
  inputSchema: jsonSchema<{ city: string }>({ type: 'object', properties: { city: { type: 'string' } }, required: ['city'] }),
});

describe.each(providers)('AI SDK %s through toFetch', (_name, make) => {
  it('generates text with usage, one upstream request', async () => {
    const { upstream, model } = await setup(make);
    const result = await generateText({ model, prompt: 'Hello', maxRetries: 0 });
    expect(result.text).toBe('Hi there, friend');
    expect(result.usage.outputTokens).toBeGreaterThan(0);
    expect(upstream.requests).toHaveLength(1);
  });

  it('streams text and its usage', async () => {
    const { upstream, model } = await setup(make);
    const result = streamText({ model, prompt: 'Hello', maxRetries: 0 });
    let text = '';
    for await (const delta of result.textStream) text += delta;
    expect(text).toBe('Hi there, friend');
    expect((await result.usage).outputTokens).toBeGreaterThan(0);
    expect(upstream.requests).toHaveLength(1);
  });

  it('returns a tool call', async () => {
    const { upstream, model } = await setup(make);
    upstream.enqueue({ kind: 'ok', reply: { toolCalls: [{ id: 'call_1', name: 'weather', arguments: { city: 'Paris' } }] } });
    const result = await generateText({ model, prompt: 'Weather?', tools: { weather }, maxRetries: 0 });
    expect(result.toolCalls).toMatchObject([{ toolName: 'weather', input: { city: 'Paris' } }]);
  });

  it('retries a 503 in sluice, one upstream request per attempt', async () => {
    const { upstream, model } = await setup(make);
    upstream.enqueue({ kind: 'status', status: 503 });
    const result = await generateText({ model, prompt: 'Hello', maxRetries: 0 });
    expect(result.text).toBe('Hi there, friend');
    expect(upstream.requests).toHaveLength(2);
  });

  it('surfaces a 400 as APICallError, not retryable, sent once', async () => {
    const { upstream, model } = await setup(make);
    upstream.enqueue({ kind: 'status', status: 400, message: 'bad input' });
    const call = generateText({ model, prompt: 'Hello', maxRetries: 0 });
    await expect(call).rejects.toSatisfy((error) => APICallError.isInstance(error));
    await expect(call).rejects.toMatchObject({ statusCode: 400, isRetryable: false });
    expect(upstream.requests).toHaveLength(1);
  });

  it('aborts mid-stream: the upstream socket closes', async () => {
    const held = await heldStreamUpstream();
    open.push(held);
    const { model } = await setup(make, held.url);
    const controller = new AbortController();
    const result = streamText({ model, prompt: 'Hello', abortSignal: controller.signal, maxRetries: 0, onError: () => {} });
    const seen: string[] = [];
    for await (const delta of result.textStream) {
      seen.push(delta);
      if (seen.join('') === 'Hello world') controller.abort();
    }
    expect(seen.join('')).toBe('Hello world');
    await held.socketClosed(1);
    expect(held.requests).toBe(1);
  });
});
