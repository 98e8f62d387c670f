import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { chat, drain, testPipeline } from '@sluice/testing/kit';
import { describe, expect, it } from 'vitest';
import { otel } from './otel.js';
import { SECONDS_BUCKETS } from './semconv.js';
import { providersOf, type TestSdk, useTestSdk } from './test-sdk.js';

let sdk: TestSdk;
useTestSdk((made) => (sdk = made));

const providers = () => providersOf(sdk);
const half = () => 0.5;

describe('otel in a pipeline: retries', () => {
  it('records one child span per attempt under the call span, and the retry as an event of the call', async () => {
    const telemetry = otel(providers());
    const { llm, clock, upstream } = await testPipeline({ middleware: [telemetry, retry({ attempts: 3, random: half }), telemetry.attempt] });
    upstream.enqueue({ kind: 'status', status: 503 });

    await clock.run(llm.complete(chat()));

    const call = sdk.span('chat gpt-4.1');
    const attempts = sdk.spans().filter((span) => span.name === 'sluice.attempt');
    expect(attempts).toHaveLength(2);
    for (const attempt of attempts) {
      expect(attempt.parentSpanContext?.spanId).toBe(call.spanContext().spanId);
      expect(attempt.spanContext().traceId).toBe(call.spanContext().traceId);
      expect(attempt.kind).toBe(SpanKind.INTERNAL);
    }
    const [first, second] = [...attempts].sort((a, b) => Number(a.attributes['sluice.attempt']) - Number(b.attributes['sluice.attempt']));
    expect(first?.attributes).toMatchObject({ 'sluice.attempt': 1, 'error.type': 'SERVER_ERROR' });
    expect(first?.status.code).toBe(SpanStatusCode.ERROR);
    expect(second?.attributes).toMatchObject({ 'sluice.attempt': 2 });
    expect(second?.attributes).not.toHaveProperty('error.type');
    expect(second?.status.code).toBe(SpanStatusCode.UNSET);

    expect(call.status.code).toBe(SpanStatusCode.UNSET);
    expect(call.attributes).toMatchObject({ 'sluice.attempts': 2, 'sluice.outcome': 'success' });
    expect(call.events.map((event) => [event.name, event.attributes])).toEqual([
      ['sluice.retry', { model: 'gpt-4.1', attempt: 2, delay_ms: expect.any(Number), code: 'SERVER_ERROR' }],
    ]);
    const [retries] = await sdk.points('sluice.retries');
    expect(retries?.value).toBe(1);
    expect(retries?.attributes).toMatchObject({ 'error.type': 'SERVER_ERROR', 'gen_ai.request.model': 'gpt-4.1' });
  });

  it('records the last error and retry-stop when every attempt failed', async () => {
    const telemetry = otel(providers());
    const { llm, clock, upstream } = await testPipeline({ middleware: [telemetry, retry({ attempts: 2, random: half }), telemetry.attempt] });
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });

    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'RETRY_EXHAUSTED' });

    const call = sdk.span('chat gpt-4.1');
    expect(call.attributes['error.type']).toBe('RETRY_EXHAUSTED');
    expect(call.status.code).toBe(SpanStatusCode.ERROR);
    expect(call.events.map((event) => event.name)).toEqual(['sluice.retry', 'sluice.retry-stop']);
    expect(call.events[1]?.attributes).toMatchObject({ reason: 'attempts', attempts: 2, codes: ['SERVER_ERROR', 'SERVER_ERROR'] });
    expect(sdk.spans().filter((span) => span.name === 'sluice.attempt')).toHaveLength(2);
  });

  it('passes calls through untouched when only the attempt instrument is in the pipeline', async () => {
    const telemetry = otel(providers());
    const { llm, clock } = await testPipeline({ middleware: telemetry.attempt });
    await clock.run(llm.complete(chat()));
    expect(sdk.spans()).toEqual([]);
  });
});

describe('otel in a pipeline: streams', () => {
  it('records a stream: time to first chunk, time per output chunk, usage and finish reason', async () => {
    const { llm, clock } = await testPipeline({
      middleware: otel({ ...providers(), semconv: 'latest' }),
      upstream: { latencyMs: 200, chunkDelayMs: 50, chunks: 4, reply: { content: 'one two three four', usage: { prompt_tokens: 9, completion_tokens: 4 } } },
    });

    const result = await clock.run(drain(llm.stream(chat())));
    expect(result.error).toBeUndefined();

    const span = sdk.span('chat gpt-4.1');
    expect(span.attributes).toMatchObject({
      'gen_ai.request.stream': true,
      'gen_ai.response.model': 'gpt-4.1',
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 9,
      'gen_ai.usage.output_tokens': 4,
      'sluice.outcome': 'success',
    });
    const ttfc = span.attributes['gen_ai.response.time_to_first_chunk'];
    expect(ttfc).toBeGreaterThanOrEqual(0.2);

    const [first] = await sdk.histogram('gen_ai.client.operation.time_to_first_chunk');
    expect(first?.value.count).toBe(1);
    expect(first?.value.sum).toBe(ttfc);
    expect(first?.value.buckets.boundaries).toEqual(SECONDS_BUCKETS);
    expect(first?.attributes).toMatchObject({ 'gen_ai.operation.name': 'chat', 'gen_ai.provider.name': 'openai' });
    const [per] = await sdk.histogram('gen_ai.client.operation.time_per_output_chunk');
    expect(per?.value.count).toBe(result.chunks.length - 1);
    expect(per?.value.buckets.boundaries).toEqual(SECONDS_BUCKETS);
    const [duration] = await sdk.histogram('gen_ai.client.operation.duration');
    expect(duration?.value.sum).toBeGreaterThan(first?.value.sum ?? Infinity);
  });

  it('records no negative time when the wall clock steps back during a stream', async () => {
    const { llm, clock, upstream } = await testPipeline({ middleware: otel({ ...providers(), semconv: 'latest' }), upstream: { reply: 'one two three', latencyMs: 1_000 } });
    const done = drain(llm.stream(chat()));
    await upstream.waitForRequests(1);
    clock.jump(-3_600_000);
    await clock.run(done);
    // Before, each was about -3 599 s, which a histogram refuses (or a backend averages in).
    expect(sdk.span('chat gpt-4.1').attributes['gen_ai.response.time_to_first_chunk']).toBe(0);
    for (const name of ['gen_ai.client.operation.time_to_first_chunk', 'gen_ai.client.operation.duration']) {
      const [point] = await sdk.histogram(name);
      expect(point?.value.count).toBe(1);
      expect(point?.value.sum).toBe(0);
    }
  });

  it('ends the span only when the stream is read to its end', async () => {
    const { llm, clock } = await testPipeline({ middleware: otel(providers()), upstream: { reply: 'one two three' } });
    const iterator = llm.stream(chat())[Symbol.asyncIterator]();
    await clock.run(iterator.next());
    expect(sdk.spans()).toEqual([]);
    await clock.run(drain({ [Symbol.asyncIterator]: () => iterator }));
    expect(sdk.spans()).toHaveLength(1);
  });

  it('records a stream retried before its first chunk as two attempts of one span', async () => {
    const telemetry = otel(providers());
    const { llm, clock, upstream } = await testPipeline({
      middleware: [telemetry, retry({ random: half }), telemetry.attempt],
      upstream: { reply: 'one two three' },
    });
    upstream.enqueue({ kind: 'cut', afterChunks: 0 });

    const result = await clock.run(drain(llm.stream(chat())));
    expect(result.error).toBeUndefined();

    const call = sdk.span('chat gpt-4.1');
    expect(call.attributes).toMatchObject({ 'sluice.outcome': 'success', 'sluice.attempts': 2 });
    const attempts = sdk.spans().filter((span) => span.name === 'sluice.attempt');
    expect(attempts.map((span) => [span.attributes['sluice.attempt'], span.attributes['error.type']])).toEqual([
      [1, 'STREAM_CUT'],
      [2, undefined],
    ]);
    const [first] = await sdk.histogram('gen_ai.client.operation.time_to_first_chunk');
    expect(first?.value.count).toBe(1);
  });

  it('records a stream cut mid-way as an error, with the chunks it had', async () => {
    const telemetry = otel({ ...providers(), captureContent: true });
    const { llm, clock, upstream } = await testPipeline({
      middleware: [telemetry, retry({ random: half }), telemetry.attempt],
      upstream: { reply: 'one two three four' },
    });
    upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 2 });

    const result = await clock.run(drain(llm.stream(chat())));
    expect(result.error).toMatchObject({ code: 'STREAM_CUT' });

    const call = sdk.span('chat gpt-4.1');
    expect(call.attributes).toMatchObject({ 'error.type': 'STREAM_CUT', 'sluice.outcome': 'error', 'sluice.attempts': 1 });
    expect(call.status.code).toBe(SpanStatusCode.ERROR);
    expect(call.attributes).not.toHaveProperty('gen_ai.usage.input_tokens');
    const output = JSON.parse(call.attributes['gen_ai.output.messages'] as string) as Array<{ finish_reason: string }>;
    expect(output).toMatchObject([{ role: 'assistant', finish_reason: 'error' }]);
    const attempt = sdk.span('sluice.attempt');
    expect(attempt.attributes['error.type']).toBe('STREAM_CUT');
    const [first] = await sdk.histogram('gen_ai.client.operation.time_to_first_chunk');
    expect(first?.value.count).toBe(1);
    const [duration] = await sdk.histogram('gen_ai.client.operation.duration');
    expect(duration?.attributes['error.type']).toBe('STREAM_CUT');
    expect(await sdk.histogram('gen_ai.client.token.usage')).toEqual([]);
  });

  it('records a stream its consumer stopped early as cancelled, not failed', async () => {
    const { llm, clock } = await testPipeline({ middleware: otel(providers()), upstream: { reply: 'one two three four' } });
    await clock.run(
      (async () => {
        for await (const _ of llm.stream(chat())) break;
      })(),
    );
    const span = sdk.span('chat gpt-4.1');
    expect(span.attributes['sluice.outcome']).toBe('cancelled');
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });
});

describe('otel in a pipeline: circuits', () => {
  it('records the circuit opening on the call that opened it, and the fast failure of the next', async () => {
    const telemetry = otel(providers());
    const { llm, clock, upstream } = await testPipeline({ middleware: [telemetry, breaker({ failures: 1, openMs: 30_000 })] });
    upstream.enqueue({ kind: 'status', status: 503 });

    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });

    const [opened, refused] = sdk.spans();
    expect(opened?.events.map((event) => event.name)).toEqual(['sluice.circuit-open']);
    expect(opened?.events[0]?.attributes).toMatchObject({ reason: 'consecutive', failures: 1, open_ms: 30_000, key: expect.any(String) });
    expect(refused?.attributes['error.type']).toBe('CIRCUIT_OPEN');
    expect(refused?.status.code).toBe(SpanStatusCode.ERROR);
    expect(upstream.requests).toHaveLength(1);

    const [state] = await sdk.points('sluice.circuit.state');
    expect(state?.value).toBe(2);
    expect(state?.attributes['sluice.circuit.key']).toBe(opened?.events[0]?.attributes?.['key']);
  });

  it('puts the circuit on the attempt span when the attempt instrument is used', async () => {
    const telemetry = otel(providers());
    const { llm, clock, upstream } = await testPipeline({
      middleware: [telemetry, retry({ attempts: 2, random: half }), telemetry.attempt, breaker({ failures: 1, openMs: 30_000 })],
    });
    upstream.enqueue({ kind: 'status', status: 503 });

    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'CIRCUIT_OPEN' });

    const attempts = sdk.spans().filter((span) => span.name === 'sluice.attempt');
    expect(attempts.map((span) => span.attributes['error.type'])).toEqual(['SERVER_ERROR', 'CIRCUIT_OPEN']);
    expect(attempts[0]?.events.map((event) => event.name)).toEqual(['sluice.circuit-open']);
    expect(attempts[1]?.attributes['sluice.circuit.state']).toBe('open');
    expect(upstream.requests).toHaveLength(1);
  });
});

describe('otel in a pipeline: placement', () => {
  it('placed inside retry alone, still records one call span, its re-entries as attempts', async () => {
    const { llm, clock, upstream } = await testPipeline({ middleware: [retry({ attempts: 3, random: half }), otel(providers())] });
    upstream.enqueue({ kind: 'status', status: 503 });

    await clock.run(llm.complete(chat()));

    const call = sdk.span('chat gpt-4.1');
    expect(call.attributes['sluice.outcome']).toBe('success');
    expect(call.status.code).toBe(SpanStatusCode.UNSET);
    expect(sdk.span('sluice.attempt').attributes['sluice.attempt']).toBe(2);
    expect(call.attributes['sluice.attempts']).toBe(2);
  });
});

describe('otel in a pipeline: an SDK that throws', () => {
  /** Providers whose every span and instrument throws, as a broken processor or exporter might. */
  function throwingProviders() {
    const boom = () => {
      throw new Error('broken exporter');
    };
    const span = new Proxy({}, { get: (_, name) => (name === 'isRecording' ? () => true : boom) });
    const instrument = { record: boom, add: boom };
    return {
      tracerProvider: { getTracer: () => ({ startSpan: (name: string) => (name === 'sluice.attempt' ? boom() : span), startActiveSpan: boom }) },
      meterProvider: {
        getMeter: () => ({
          createHistogram: () => instrument,
          createCounter: () => instrument,
          createUpDownCounter: () => instrument,
          createGauge: () => instrument,
          createObservableGauge: () => ({ addCallback: () => {}, removeCallback: () => {} }),
          createObservableCounter: () => ({ addCallback: () => {}, removeCallback: () => {} }),
          createObservableUpDownCounter: () => ({ addCallback: () => {}, removeCallback: () => {} }),
          addBatchObservableCallback: () => {},
          removeBatchObservableCallback: () => {},
        }),
      },
    };
  }

  it('never fails a call, a retried one or a stream, and reports each throw as listener-error', async () => {
    const telemetry = otel(throwingProviders() as never);
    const { llm, clock, upstream, events } = await testPipeline({ middleware: [telemetry, retry({ attempts: 3, random: half }), telemetry.attempt] });
    upstream.enqueue({ kind: 'status', status: 503 });
    await expect(clock.run(llm.complete(chat('Hello')))).resolves.toMatchObject({ object: 'chat.completion' });
    // Before, the first chunk's timing threw out of the stream's next(): the caller's stream failed.
    const drained = await clock.run(drain(llm.stream(chat('Tell me'))));
    expect(drained.error).toBeUndefined();
    expect(drained.chunks.length).toBeGreaterThan(2);
    const otelErrors = events.of('listener-error').filter((event) => event.event === 'otel');
    expect(otelErrors.length).toBeGreaterThan(0);
    expect(otelErrors.every((event) => (event.error as Error).message === 'broken exporter')).toBe(true);
  });
});
