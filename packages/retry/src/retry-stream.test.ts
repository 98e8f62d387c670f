import { createPipeline, openAICompatible } from '@sluice/core';
import { transportStream } from '@sluice/core/kit';
import { mockUpstream } from '@sluice/testing';
import { chat, closeTestPipelines, drain, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it } from 'vitest';
import { RetryError } from './errors.js';
import { retry } from './retry.js';

afterEach(closeTestPipelines);

const half = () => 0.5;

describe('retry: streams', () => {
  it.each([
    ['a reset before the first chunk', { kind: 'reset', at: 'mid-stream', afterChunks: 0 }, 'STREAM_CUT'],
    ['an SSE error before the first chunk', { kind: 'sse-error', afterChunks: 0 }, 'SERVER_ERROR'],
    ['an SSE error as a data line', { kind: 'sse-error', afterChunks: 0, style: 'data' }, 'SERVER_ERROR'],
    ['a stream cut before the first chunk', { kind: 'cut', afterChunks: 0 }, 'STREAM_CUT'],
    ['a 503 before the headers', { kind: 'status', status: 503 }, 'SERVER_ERROR'],
  ] as const)('retries %s and hands the caller one clean stream', async (_, fault, code) => {
    const { upstream, llm, clock, events, attempts } = await testPipeline({ middleware: retry({ random: half }), upstream: { reply: 'one two three four' } });
    upstream.enqueue(fault);

    const result = await clock.run(drain(llm.stream(chat())));

    expect(result).toMatchObject({ text: 'one two three four', error: undefined });
    expect(upstream.requests).toHaveLength(2);
    expect(events.of('retry')).toMatchObject([{ attempt: 2, code }]);
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['error', 'success']);
  });

  it("leaves the transport's own stream in ctx.chunks after reading its first chunk, so a cache outside keeps the upstream's text", async () => {
    const seen: boolean[] = [];
    const { llm, clock } = await testPipeline({
      middleware: [
        async function outside(ctx, next) {
          await next();
          seen.push(transportStream(ctx) !== undefined);
        },
        retry({ random: half }),
      ],
      upstream: { reply: 'one two three four' },
    });
    const result = await clock.run(drain(llm.stream(chat())));
    expect(result).toMatchObject({ text: 'one two three four', error: undefined });
    expect(seen).toEqual([true]);
  });

  it('does not retry a cut after the first chunk reached the caller: it surfaces as STREAM_CUT', async () => {
    const { upstream, llm, clock, events } = await testPipeline({ middleware: retry({ random: half }), upstream: { reply: 'one two three four' } });
    upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 2 });

    const result = await clock.run(drain(llm.stream(chat())));

    expect(result.chunks).toHaveLength(2);
    expect(result.text.trim()).toBe('one');
    expect(result.error).toMatchObject({ code: 'STREAM_CUT' });
    expect(upstream.requests).toHaveLength(1);
    expect(events.of('retry')).toEqual([]);
  });

  it('does not retry an SSE error after the first chunk', async () => {
    const { upstream, llm, clock } = await testPipeline({ middleware: retry({ random: half }) });
    upstream.enqueue({ kind: 'sse-error', afterChunks: 1 });
    const result = await clock.run(drain(llm.stream(chat())));
    expect(result.chunks).toHaveLength(1);
    expect(result.error).toMatchObject({ code: 'SERVER_ERROR' });
    expect(upstream.requests).toHaveLength(1);
  });

  it('does not retry a non-retryable error before the first chunk', async () => {
    const { upstream, llm, clock } = await testPipeline({ middleware: retry({ random: half }) });
    upstream.enqueue({ kind: 'sse-error', afterChunks: 0, type: 'invalid_request_error', code: null });
    const result = await clock.run(drain(llm.stream(chat())));
    expect(result).toMatchObject({ chunks: [], error: { code: 'BAD_REQUEST' } });
    expect(upstream.requests).toHaveLength(1);
  });

  it('throws a RetryError when every attempt broke before its first chunk', async () => {
    const { upstream, llm, clock } = await testPipeline({ middleware: retry({ random: half }) });
    upstream.enqueue(
      { kind: 'sse-error', afterChunks: 0 },
      { kind: 'reset', at: 'mid-stream', afterChunks: 0 },
      { kind: 'sse-error', afterChunks: 0 },
    );
    const result = await clock.run(drain(llm.stream(chat())));
    expect(result.chunks).toEqual([]);
    expect(result.error).toBeInstanceOf(RetryError);
    expect((result.error as RetryError).message).toBe('3 attempts failed: SERVER_ERROR, STREAM_CUT, SERVER_ERROR');
    expect(upstream.requests).toHaveLength(3);
  });

  it('cancels the upstream stream when the caller stops reading after the first chunk', async () => {
    const { llm, clock, events, attempts } = await testPipeline({ middleware: retry(), upstream: { reply: 'one two three four five six' } });

    for await (const chunk of llm.stream(chat())) {
      expect(chunk.object).toBe('chat.completion.chunk');
      break;
    }

    await clock.until(() => attempts[0]?.outcome !== undefined);
    expect(attempts.map((attempt) => attempt.outcome)).toEqual(['cancelled']);
    expect(events.of('response')).toMatchObject([{ outcome: 'cancelled' }]);
  });

  it('passes an empty stream through', async () => {
    const { upstream, llm } = await testPipeline({ middleware: retry() });
    upstream.enqueue({ kind: 'sse-error', afterChunks: 0, body: '[DONE]', style: 'data' });
    const result = await drain(llm.stream(chat()));
    expect(result).toEqual({ chunks: [], text: '', error: undefined });
    expect(upstream.requests).toHaveLength(1);
  });

  it('keeps a stream it read ahead in flight when nothing watches the call, so close() ends it with CLOSED after its grace', async () => {
    const upstream = await mockUpstream({ reply: 'one two three four', chunkDelayMs: 60_000 });
    // Nothing listens: the caller is handed the attempt's stream, which retry read the first chunk of.
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) }).use(retry({ random: half }));
    try {
      const reader = llm.stream(chat())[Symbol.asyncIterator]();
      await reader.next();
      // Before, the call counted as over at hand-over: close() aborted nothing, and closing the transport cut the stream.
      const next = expect(reader.next()).rejects.toMatchObject({ code: 'CLOSED' });
      await llm.close({ graceMs: 0 });
      await next;
    } finally {
      await upstream.close();
    }
  });
});
