import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { chat, testPipeline } from '@sluice/testing/kit';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { otel } from './otel.js';
import { SECONDS_BUCKETS, TOKEN_BUCKETS } from './semconv.js';
import { pointWith, providersOf, type TestSdk, useTestSdk } from './test-sdk.js';

let sdk: TestSdk;
useTestSdk((made) => (sdk = made));
afterEach(() => {
  vi.unstubAllEnvs();
});

const providers = () => providersOf(sdk);

describe('otel: the call span', () => {
  it('records a completion as a CLIENT span "chat {model}" with the request, response and usage attributes', async () => {
    const { llm, clock, upstream } = await testPipeline({
      middleware: otel(providers()),
      upstream: { reply: { content: 'Hi!', usage: { prompt_tokens: 12, completion_tokens: 3 } } },
    });
    const reply = await clock.run(llm.complete(chat('Hello', { temperature: 0.2, top_p: 0.9, max_tokens: 64 })));

    const span = sdk.span('chat gpt-4.1');
    const port = Number(new URL(upstream.url).port);
    expect(span.kind).toBe(SpanKind.CLIENT);
    expect(span.attributes).toEqual({
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4.1',
      'gen_ai.request.temperature': 0.2,
      'gen_ai.request.top_p': 0.9,
      'gen_ai.request.max_tokens': 64,
      'server.address': '127.0.0.1',
      'server.port': port,
      'gen_ai.response.id': reply.id,
      'gen_ai.response.model': reply.model,
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 3,
      'sluice.call.id': expect.any(String),
      'sluice.outcome': 'success',
    });
    expect(span.status.code).toBe(SpanStatusCode.UNSET);
  });

  it('sets the sampling attributes when the span starts, as the conventions ask', async () => {
    const seen: Record<string, unknown>[] = [];
    const { tracerProvider } = sdk;
    const tracer = tracerProvider.getTracer('probe');
    const watching = {
      getTracer: () => ({
        startSpan: (name: string, options: { attributes?: Record<string, unknown> }, parent: unknown) => {
          seen.push({ ...options.attributes });
          return tracer.startSpan(name, options as never, parent as never);
        },
        startActiveSpan: tracer.startActiveSpan.bind(tracer),
      }),
    };
    const { llm, clock } = await testPipeline({ middleware: otel({ tracerProvider: watching as never, meterProvider: sdk.meterProvider }) });
    await clock.run(llm.complete(chat()));
    expect(seen[0]).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4.1',
      'server.address': '127.0.0.1',
      'server.port': expect.any(Number),
    });
  });

  it('emits gen_ai.provider.name and not gen_ai.system with semconv latest', async () => {
    const { llm, clock } = await testPipeline({ middleware: otel({ ...providers(), semconv: 'latest' }) });
    await clock.run(llm.complete(chat()));
    const { attributes } = sdk.span('chat gpt-4.1');
    expect(attributes['gen_ai.provider.name']).toBe('openai');
    expect(attributes).not.toHaveProperty('gen_ai.system');
  });

  it('switches to the newest conventions when OTEL_SEMCONV_STABILITY_OPT_IN lists gen_ai_latest_experimental', async () => {
    vi.stubEnv('OTEL_SEMCONV_STABILITY_OPT_IN', 'http, gen_ai_latest_experimental');
    const { llm, clock } = await testPipeline({ middleware: otel(providers()) });
    await clock.run(llm.complete(chat()));
    const { attributes } = sdk.span('chat gpt-4.1');
    expect(attributes['gen_ai.provider.name']).toBe('openai');
    expect(attributes).not.toHaveProperty('gen_ai.system');
  });

  it('keeps the v1.36 shape when the opt-in lists other categories only', async () => {
    vi.stubEnv('OTEL_SEMCONV_STABILITY_OPT_IN', 'http,database');
    const { llm, clock } = await testPipeline({ middleware: otel(providers()) });
    await clock.run(llm.complete(chat()));
    expect(sdk.span('chat gpt-4.1').attributes['gen_ai.system']).toBe('openai');
  });

  it('takes the provider name from the option', async () => {
    const { llm, clock } = await testPipeline({ middleware: otel({ ...providers(), provider: 'deepseek', semconv: 'latest' }) });
    await clock.run(llm.complete(chat('Hi', { model: 'deepseek-v3.2' })));
    expect(sdk.span('chat deepseek-v3.2').attributes['gen_ai.provider.name']).toBe('deepseek');
  });

  it('marks a failed call with error.type (the sluice code) and an error status', async () => {
    const { llm, clock, upstream } = await testPipeline({ middleware: otel(providers()) });
    upstream.enqueue({ kind: 'status', status: 401 });
    await expect(clock.run(llm.complete(chat()))).rejects.toMatchObject({ code: 'AUTHENTICATION' });
    const span = sdk.span('chat gpt-4.1');
    expect(span.attributes['error.type']).toBe('AUTHENTICATION');
    expect(span.attributes['sluice.outcome']).toBe('error');
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    const [point] = await sdk.histogram('gen_ai.client.operation.duration');
    expect(point?.attributes['error.type']).toBe('AUTHENTICATION');
  });
});

describe('otel: content and secrets', () => {
  it('records no prompt, no completion and no API key unless asked', async () => {
    const { llm, clock } = await testPipeline({
      middleware: otel(providers()),
      upstream: { reply: 'a secret answer' },
      transport: { apiKey: 'sk-very-secret-key' },
    });
    await clock.run(llm.complete(chat('a private prompt')));
    const everything = JSON.stringify(sdk.spans().map((span) => [span.attributes, span.events]));
    expect(everything).not.toContain('private prompt');
    expect(everything).not.toContain('secret answer');
    expect(everything).not.toContain('sk-very-secret-key');
    expect(everything).not.toContain('gen_ai.input.messages');
  });

  it('records prompts and completions in the conventions message schema with captureContent', async () => {
    const { llm, clock } = await testPipeline({
      middleware: otel({ ...providers(), captureContent: true }),
      upstream: { reply: 'Paris.' },
      transport: { apiKey: 'sk-very-secret-key' },
    });
    await clock.run(
      llm.complete({
        model: 'gpt-4.1',
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: 'Capital of France?' },
        ],
      }),
    );
    const { attributes } = sdk.span('chat gpt-4.1');
    expect(JSON.parse(attributes['gen_ai.input.messages'] as string)).toEqual([
      { role: 'system', parts: [{ type: 'text', content: 'Be brief.' }] },
      { role: 'user', parts: [{ type: 'text', content: 'Capital of France?' }] },
    ]);
    expect(JSON.parse(attributes['gen_ai.output.messages'] as string)).toEqual([
      { role: 'assistant', parts: [{ type: 'text', content: 'Paris.' }], finish_reason: 'stop' },
    ]);
    expect(JSON.stringify(sdk.spans().map((span) => span.attributes))).not.toContain('sk-very-secret-key');
  });
});

describe('otel: metrics', () => {
  it('records the operation duration and token usage with the conventions units and buckets', async () => {
    const { llm, clock } = await testPipeline({
      middleware: otel(providers()),
      upstream: { latencyMs: 1_500, reply: { content: 'ok', usage: { prompt_tokens: 40, completion_tokens: 2 } } },
    });
    const started = clock.now();
    await clock.run(llm.complete(chat()));

    const span = sdk.span('chat gpt-4.1');
    expect(span.startTime).toEqual([Math.floor(started / 1000), (started % 1000) * 1e6]);
    expect(span.duration).toEqual([1, 500_000_000]);
    const duration = await sdk.metric('gen_ai.client.operation.duration');
    expect(duration?.descriptor.unit).toBe('s');
    const [point] = await sdk.histogram('gen_ai.client.operation.duration');
    expect(point?.value.buckets.boundaries).toEqual(SECONDS_BUCKETS);
    expect(point?.value.sum).toBe(1.5);
    expect(point?.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.system': 'openai',
      'gen_ai.request.model': 'gpt-4.1',
      'gen_ai.response.model': 'gpt-4.1',
      'server.address': '127.0.0.1',
    });
    expect(point?.attributes).not.toHaveProperty('error.type');

    const usage = await sdk.metric('gen_ai.client.token.usage');
    expect(usage?.descriptor.unit).toBe('{token}');
    const tokens = await sdk.histogram('gen_ai.client.token.usage');
    expect(tokens).toHaveLength(2);
    expect(pointWith(tokens, { 'gen_ai.token.type': 'input' })?.value.sum).toBe(40);
    expect(pointWith(tokens, { 'gen_ai.token.type': 'output' })?.value.sum).toBe(2);
    expect(tokens[0]?.value.buckets.boundaries).toEqual(TOKEN_BUCKETS);
  });

  it('records no chunk timings for a call that does not stream', async () => {
    const { llm, clock } = await testPipeline({ middleware: otel(providers()) });
    await clock.run(llm.complete(chat()));
    expect(await sdk.histogram('gen_ai.client.operation.time_to_first_chunk')).toEqual([]);
    expect(await sdk.histogram('gen_ai.client.operation.time_per_output_chunk')).toEqual([]);
  });
});

describe('otel: options', () => {
  it('rejects an unknown convention version, naming the field', () => {
    expect(() => otel({ semconv: 'v2' as never })).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
    expect(() => otel({ semconv: 'v2' as never })).toThrow(/otel\.semconv/);
  });

  it('rejects a tracer provider without getTracer', () => {
    expect(() => otel({ tracerProvider: {} as never })).toThrow(/otel\.tracerProvider/);
  });
});
