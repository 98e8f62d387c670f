import { type ChatCompletionRequest, type ChatMessage, type CompletionContext, createPipeline, openAICompatible } from '@sluice/core';
import { type PromptTokens, promptTokens } from '@sluice/core/kit';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { PromptTooLongError } from './errors.js';
import { countMessages } from './count-messages.js';
import type { Tokenizer } from './tokenizer.js';
import type { ContextTrimEvent } from './events.js';
import type { TrimContextOptions } from './options.js';
import { type ContextState, trimContext } from './trim-context.js';

const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((thing) => thing.close()));
});

/** A pipeline with trimContext in front of the mock upstream, and what reached the transport. */
async function start(options: TrimContextOptions) {
  const upstream: MockUpstream = await mockUpstream();
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) });
  open.push(upstream, llm);
  const seen: { state?: ContextState; tokens?: PromptTokens; shared?: PromptTokens } = {};
  llm.use(trimContext(options)).use(async function inspect(ctx, next) {
    seen.state = ctx.state.context;
    seen.tokens = ctx.state.tokens;
    seen.shared = promptTokens(ctx as CompletionContext);
    await next();
  });
  const events: ContextTrimEvent[] = [];
  llm.events.on('context-trim', (event) => void events.push(event));
  const sent = () => upstream.requests.map((request) => (request.body as ChatCompletionRequest).messages);
  return { llm, upstream, seen, events, sent };
}

const say = (role: 'user' | 'assistant', turn: number): ChatMessage => ({
  role,
  content: `${role === 'user' ? 'Question' : 'Answer'} number ${turn}: ${'lorem ipsum dolor sit amet '.repeat(8)}`,
});

function history(turns: number): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are terse.' }];
  for (let turn = 1; turn <= turns; turn++) messages.push(say('user', turn), say('assistant', turn));
  messages.push(say('user', turns + 1));
  return messages;
}

describe('trimContext', () => {
  it('sends the system message and the newest turns that fit, in order', async () => {
    const { llm, seen, events, sent } = await start({ maxTokens: 400 });
    const messages = history(10);
    const request = { model: 'gpt-4o', messages };
    await llm.complete(request);

    const [body] = sent();
    expect(body?.[0]).toEqual(messages[0]);
    expect(body?.at(-1)).toEqual(messages.at(-1));
    expect(body).toEqual([messages[0], ...messages.slice(messages.length - (body?.length ?? 0) + 1)]);
    expect(body?.length).toBeLessThan(messages.length);
    const tokensAfter = countMessages(body ?? [], 'gpt-4o').tokens;
    expect(tokensAfter).toBeLessThanOrEqual(400);
    expect(countMessages(body ?? [], 'gpt-4o').tokens + countMessages([messages[messages.length - (body?.length ?? 0)] as ChatMessage], 'gpt-4o').tokens - 3).toBeGreaterThan(400);

    expect(events).toEqual([
      {
        id: expect.any(String),
        model: 'gpt-4o',
        tokensBefore: countMessages(messages, 'gpt-4o').tokens,
        tokensAfter,
        dropped: messages.length - (body?.length ?? 0),
        budget: 400,
        summarized: false,
      },
    ]);
    expect(seen.state).toMatchObject({ tokensAfter, budget: 400, dropped: events[0]?.dropped, approximate: false });
    expect(seen.shared).toEqual({ count: tokensAfter, approximate: false, messages: body, model: 'gpt-4o' });
    expect(request.messages).toBe(messages);
    expect(messages).toHaveLength(22);
  });

  it('budgets the window × ratio minus the output the request reserves', async () => {
    const { llm, events } = await start({ contextWindow: () => 1_000, ratio: 0.5 });
    await llm.complete({ model: 'my-model', messages: history(10), max_completion_tokens: 100, max_tokens: 50 });
    expect(events[0]?.budget).toBe(400);
    await llm.complete({ model: 'my-model', messages: history(10), max_tokens: 50 });
    expect(events[1]?.budget).toBe(450);
  });

  it('names the field when the output the request reserves alone fills the window, and sends nothing', async () => {
    const { llm, sent } = await start({ contextWindow: () => 1_000, ratio: 0.5 });
    await expect(llm.complete({ model: 'my-model', messages: history(1), max_tokens: 1e9 })).rejects.toMatchObject({
      code: 'VALIDATION',
      field: 'request.max_tokens',
      message: expect.stringContaining('1000000000 output tokens leave no room for the prompt: my-model has a window of 1000 tokens, 500 of them'),
    });
    await expect(llm.complete({ model: 'my-model', messages: history(1), max_completion_tokens: 500 })).rejects.toMatchObject({
      field: 'request.max_completion_tokens',
    });
    expect(sent()).toHaveLength(0);
  });

  it('uses the built-in window of the original models and 0.8 of it', async () => {
    const { llm, seen } = await start({});
    await llm.complete({ model: 'deepseek-v3.2', messages: history(1), max_tokens: 8_192 });
    expect(seen.state?.budget).toBe(0.8 * 128_000 - 8_192);
    await llm.complete({ model: 'gpt-4.1', messages: history(1) });
    expect(seen.state?.budget).toBe(Math.floor(0.8 * 1_047_576));
  });

  it('passes a request that fits through untouched and still shares its count', async () => {
    const { llm, events, seen, sent } = await start({ maxTokens: 100_000 });
    const messages = history(3);
    await llm.complete({ model: 'gpt-4o', messages });
    expect(sent()[0]).toEqual(messages);
    expect(events).toEqual([]);
    const tokens = countMessages(messages, 'gpt-4o').tokens;
    expect(seen.state).toEqual({ tokensBefore: tokens, tokensAfter: tokens, budget: 100_000, dropped: 0, summarized: false, approximate: false });
    expect(seen.shared?.count).toBe(tokens);
  });

  it('passes a model with no known window on untrimmed', async () => {
    const { llm, sent, seen } = await start({});
    const messages = history(40);
    await llm.complete({ model: 'my-local-llama', messages });
    expect(sent()[0]).toHaveLength(messages.length);
    expect(seen.state).toMatchObject({ budget: undefined, dropped: 0, approximate: true });
  });

  it('keeps an assistant tool call and its results together', async () => {
    const { llm, sent } = await start({ maxTokens: 200 });
    const call: ChatMessage = {
      role: 'assistant',
      content: null,
      tool_calls: [
        { id: 'call_a', type: 'function', function: { name: 'search', arguments: '{"q":"weather in Paris"}' } },
        { id: 'call_b', type: 'function', function: { name: 'search', arguments: '{"q":"weather in Rome"}' } },
      ],
    };
    const results: ChatMessage[] = [
      { role: 'tool', tool_call_id: 'call_a', content: 'Paris: 22°C, sunny. '.repeat(6) },
      { role: 'tool', tool_call_id: 'call_b', content: 'Rome: 27°C, clear. '.repeat(6) },
    ];
    const messages: ChatMessage[] = [{ role: 'system', content: 'Use tools.' }, say('user', 1), say('assistant', 1), say('user', 2), call, ...results];
    await llm.complete({ model: 'gpt-4o', messages });
    const body = sent()[0] ?? [];
    const kept = (message: ChatMessage) => body.some((m) => JSON.stringify(m) === JSON.stringify(message));
    expect(kept(call)).toBe(kept(results[0] as ChatMessage));
    expect(kept(call)).toBe(kept(results[1] as ChatMessage));
    expect(kept(messages[3] as ChatMessage)).toBe(true);
  });

  it('replaces the dropped turns with a summary after the system messages, counted', async () => {
    const summarize = vi.fn(async (dropped: ChatMessage[]) => `Earlier: ${dropped.length} messages about lorem ipsum.`);
    const { llm, sent, events } = await start({ maxTokens: 400, summarize });
    const messages = history(10);
    await llm.complete({ model: 'gpt-4o', messages });

    const body = sent()[0] ?? [];
    const dropped = summarize.mock.calls[0]?.[0] ?? [];
    expect(body[0]).toEqual(messages[0]);
    expect(body[1]).toEqual({ role: 'system', content: `Earlier: ${dropped.length} messages about lorem ipsum.` });
    expect(dropped).toEqual(messages.slice(1, 1 + dropped.length));
    expect(body.slice(2)).toEqual(messages.slice(messages.length - (body.length - 2)));
    expect(events[0]).toMatchObject({
      summarized: true,
      tokensAfter: countMessages(body, 'gpt-4o').tokens,
      dropped: messages.length - (body.length - 1),
    });
    expect(countMessages(body, 'gpt-4o').tokens).toBeLessThanOrEqual(400);
  });

  it('drops the turns without a summary when the summariser fails, reporting it, and still sends the call', async () => {
    const failure = Object.assign(new Error('the summary model is down'), { code: 'CIRCUIT_OPEN' });
    const { llm, sent, events } = await start({ maxTokens: 400, summarize: async () => Promise.reject(failure) });
    const reported: unknown[] = [];
    llm.events.on('listener-error', (event) => void reported.push(event));
    // Before, the summariser's failure was the call's: an optional summary cost the whole answer.
    await expect(llm.complete({ model: 'gpt-4o', messages: history(10) })).resolves.toMatchObject({ object: 'chat.completion' });
    expect(reported).toEqual([expect.objectContaining({ event: 'summarize', error: failure })]);
    expect(events[0]).toMatchObject({ summarized: false });
    expect(countMessages(sent()[0] ?? [], 'gpt-4o').tokens).toBeLessThanOrEqual(400);
    // The call's own abort is still the call's.
    const controller = new AbortController();
    const aborting = await start({ maxTokens: 400, summarize: async () => (controller.abort(), Promise.reject(new Error('aborted'))) });
    await expect(aborting.llm.complete({ model: 'gpt-4o', messages: history(10) }, { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    expect(aborting.upstream.requests).toHaveLength(0);
  });

  it("ends the call at its abort when the summariser never answers and does not hear ctx.signal", async () => {
    let asked = 0;
    const { llm, upstream } = await start({ maxTokens: 400, summarize: () => (asked++, new Promise<string>(() => {})) });
    const controller = new AbortController();
    const settled = llm.complete({ model: 'gpt-4o', messages: history(10) }, { signal: controller.signal });
    await vi.waitFor(() => expect(asked).toBe(1));
    controller.abort();
    // Before, the call waited on the summariser for good.
    await expect(settled).rejects.toMatchObject({ code: 'ABORTED' });
    expect(upstream.requests).toHaveLength(0);
    // A summariser that answers at once with a string, not a promise, is taken as it is.
    const plain = await start({ maxTokens: 400, summarize: (() => 'Earlier: lorem ipsum.') as unknown as () => Promise<string> });
    await plain.llm.complete({ model: 'gpt-4o', messages: history(10) });
    expect(plain.sent()[0]?.[1]).toEqual({ role: 'system', content: 'Earlier: lorem ipsum.' });
  });

  it('drops more turns to make room for a summary that does not fit', async () => {
    const long = `Summary: ${'a detail worth keeping, '.repeat(40)}`;
    const { llm, sent } = await start({ maxTokens: 400, summarize: async () => ({ role: 'user', content: long }) });
    await llm.complete({ model: 'gpt-4o', messages: history(10) });
    const body = sent()[0] ?? [];
    expect(body[1]).toEqual({ role: 'user', content: long });
    expect(countMessages(body, 'gpt-4o').tokens).toBeLessThanOrEqual(400);
  });

  it('fails with PROMPT_TOO_LONG, saying by how much, when the essentials alone do not fit', async () => {
    const { llm, upstream } = await start({ maxTokens: 50 });
    const messages = history(2);
    const needed = countMessages([messages[0] as ChatMessage, messages.at(-1) as ChatMessage], 'gpt-4o').tokens;
    const call = llm.complete({ model: 'gpt-4o', messages });
    await expect(call).rejects.toMatchObject({ code: 'PROMPT_TOO_LONG', retryable: false, needed, budget: 50, overBy: needed - 50 });
    await expect(call).rejects.toBeInstanceOf(PromptTooLongError);
    expect(upstream.requests).toHaveLength(0);
  });

  it('counts with the tokenizer it is given', async () => {
    const count = vi.fn((text: string) => text.length);
    const chars: Tokenizer = { name: 'chars', approximate: false, count };
    const { llm, seen } = await start({ maxTokens: 100_000, tokenizer: () => chars });
    await llm.complete({ model: 'gpt-4o', messages: [{ role: 'user', content: 'abcdef' }] });
    expect(seen.state?.tokensBefore).toBe(3 + 'user'.length + 6 + 3);
  });

  it('trims a 1,000-message history to the newest turns, from cached counts the second time', async () => {
    const count = vi.fn((text: string) => Math.ceil(text.length / 4));
    const spy: Tokenizer = { name: 'spy', approximate: false, count };
    const { llm, sent } = await start({ maxTokens: 2_000, tokenizer: spy });
    const messages = history(500).slice(0, 1_000);
    await llm.complete({ model: 'gpt-4o', messages });
    const calls = count.mock.calls.length;
    await llm.complete({ model: 'gpt-4o', messages });
    expect(count.mock.calls.length).toBe(calls);
    expect(sent()[1]).toEqual(sent()[0]);
    expect(sent()[0]?.at(-1)).toEqual(messages.at(-1));
  });

  it('validates its options, naming the field', () => {
    expect(() => trimContext({ ratio: 1.5 })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'trimContext.ratio' }));
    expect(() => trimContext({ maxTokens: 0 })).toThrow(expect.objectContaining({ field: 'trimContext.maxTokens' }));
    expect(() => trimContext({ tokenizer: 'o200k' as unknown as Tokenizer })).toThrow(expect.objectContaining({ field: 'trimContext.tokenizer' }));
    expect(() => trimContext({ unknown: true } as TrimContextOptions)).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });

  it('rejects a summary that is not a chat message', async () => {
    const { llm } = await start({ maxTokens: 400, summarize: async () => ({ role: 'narrator' }) as unknown as ChatMessage });
    await expect(llm.complete({ model: 'gpt-4o', messages: history(10) })).rejects.toMatchObject({ code: 'VALIDATION' });
  });
});
