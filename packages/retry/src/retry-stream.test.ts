import type { ChatCompletionChunk, SluiceEvents } from '@sluice/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RetryError } from './retry-error.js';
import { retry } from './retry.js';
import { chat, closeAll, collect, drive, start } from './test-pipeline.js';

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
});
afterEach(async () => {
  vi.useRealTimers();
  await closeAll();
});

const half = () => 0.5;

/** Reads a stream to its end: the text that reached the caller, and the error that ended it. */
async function read(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ text: string; chunks: number; error: unknown }> {
  let text = '';
  let chunks = 0;
  try {
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta.content ?? '';
    }
    return { text, chunks, error: undefined };
  } catch (error) {
    return { text, chunks, error };
  }
}

describe('retry: streams', () => {
  it.each([
    ['a reset before the first chunk', { kind: 'reset', at: 'mid-stream', afterChunks: 0 }, 'STREAM_CUT'],
    ['an SSE error before the first chunk', { kind: 'sse-error', afterChunks: 0 }, 'SERVER_ERROR'],
    ['an SSE error as a data line', { kind: 'sse-error', afterChunks: 0, style: 'data' }, 'SERVER_ERROR'],
    ['a stream cut before the first chunk', { kind: 'cut', afterChunks: 0 }, 'STREAM_CUT'],
    ['a 503 before the headers', { kind: 'status', status: 503 }, 'SERVER_ERROR'],
  ] as const)('retries %s and hands the caller one clean stream', async (_, fault, code) => {
    const { upstream, llm, outcomes } = await start([retry({ random: half })], { reply: 'one two three four' });
    upstream.enqueue(fault);
    const retries = collect(llm, 'retry');

    const result = await drive(read(llm.stream(chat())));

    expect(result).toEqual({ text: 'one two three four', chunks: expect.any(Number), error: undefined });
    expect(upstream.requests).toHaveLength(2);
    expect(retries).toMatchObject([{ attempt: 2, code }]);
    expect(outcomes).toEqual(['error', 'success'].slice(fault.kind === 'status' ? 1 : 0));
  });

  it('does not retry a cut after the first chunk reached the caller: it surfaces as STREAM_CUT', async () => {
    const { upstream, llm } = await start([retry({ random: half })], { reply: 'one two three four' });
    upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 2 });
    const retries = collect(llm, 'retry');

    const result = await drive(read(llm.stream(chat())));

    expect(result.chunks).toBe(2);
    expect(result.text.trim()).toBe('one');
    expect(result.error).toMatchObject({ code: 'STREAM_CUT' });
    expect(upstream.requests).toHaveLength(1);
    expect(retries).toEqual([]);
  });

  it('does not retry an SSE error after the first chunk', async () => {
    const { upstream, llm } = await start([retry({ random: half })]);
    upstream.enqueue({ kind: 'sse-error', afterChunks: 1 });
    const result = await drive(read(llm.stream(chat())));
    expect(result.chunks).toBe(1);
    expect(result.error).toMatchObject({ code: 'SERVER_ERROR' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('does not retry a non-retryable error before the first chunk', async () => {
    const { upstream, llm } = await start([retry({ random: half })]);
    upstream.enqueue({ kind: 'sse-error', afterChunks: 0, type: 'invalid_request_error', code: null });
    const result = await drive(read(llm.stream(chat())));
    expect(result).toMatchObject({ chunks: 0, error: { code: 'BAD_REQUEST' } });
    expect(upstream.requests).toHaveLength(1);
  });

  it('throws a RetryError when every attempt broke before its first chunk', async () => {
    const { upstream, llm } = await start([retry({ random: half })]);
    upstream.enqueue(
      { kind: 'sse-error', afterChunks: 0 },
      { kind: 'reset', at: 'mid-stream', afterChunks: 0 },
      { kind: 'sse-error', afterChunks: 0 },
    );
    const result = await drive(read(llm.stream(chat())));
    expect(result.chunks).toBe(0);
    expect(result.error).toBeInstanceOf(RetryError);
    expect((result.error as RetryError).message).toBe('3 attempts failed: SERVER_ERROR, STREAM_CUT, SERVER_ERROR');
    expect(upstream.requests).toHaveLength(3);
  });

  it('cancels the upstream stream when the caller stops reading after the first chunk', async () => {
    const { llm, outcomes } = await start([retry()], { reply: 'one two three four five six' });
    const responses: Array<SluiceEvents['response']> = collect(llm, 'response');

    for await (const chunk of llm.stream(chat())) {
      expect(chunk.object).toBe('chat.completion.chunk');
      break;
    }

    await vi.waitFor(() => expect(outcomes).toEqual(['cancelled']));
    expect(responses).toMatchObject([{ outcome: 'cancelled' }]);
  });

  it('passes an empty stream through', async () => {
    const { upstream, llm } = await start([retry()]);
    upstream.enqueue({ kind: 'sse-error', afterChunks: 0, body: '[DONE]', style: 'data' });
    const result = await read(llm.stream(chat()));
    expect(result).toEqual({ text: '', chunks: 0, error: undefined });
    expect(upstream.requests).toHaveLength(1);
  });
});
