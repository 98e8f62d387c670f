import { inspect } from 'node:util';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createPipeline } from './pipeline.js';
import { openAICompatible } from './open-ai-compatible.js';
import { apiKey, ask, collect, setup, statusCodes } from './test-helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('openAICompatible: requests', () => {
  it('posts the request with the bearer key and answers with the completion and usage', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'Hi!' } });
    const reply = await llm.complete(ask('Hello'));
    expect(reply.choices[0]?.message.content).toBe('Hi!');
    const [received] = upstream.requests;
    expect(received).toMatchObject({ method: 'POST', path: '/v1/chat/completions' });
    expect(received?.headers.authorization).toBe(`Bearer ${apiKey}`);
    expect(received?.body).toMatchObject({ model: 'gpt-4.1', stream: false, messages: [{ role: 'user', content: 'Hello' }] });
  });

  it('exposes the response headers to middleware, on success and on error', async () => {
    const { upstream, llm } = await setup({ upstream: { headers: { 'x-ratelimit-remaining-requests': '99' } } });
    const seen: Array<string | undefined> = [];
    llm.use(async function look(ctx, next) {
      try {
        await next();
      } finally {
        seen.push(ctx.responseHeaders?.['x-ratelimit-remaining-requests']);
      }
    });
    await llm.complete(ask());
    upstream.enqueue({ kind: 'status', status: 429 });
    await llm.complete(ask()).catch(() => {});
    expect(seen).toEqual(['99', '99']);
  });

  it('passes unknown request fields through untouched', async () => {
    const { upstream, llm } = await setup();
    // A field no type declares (a provider's own) reaches the upstream all the same.
    const request = { ...ask(), reasoning_effort: 'low', provider: { order: ['a'] } };
    await llm.complete(request);
    expect(upstream.requests[0]?.body).toMatchObject({ reasoning_effort: 'low', provider: { order: ['a'] } });
  });

  it('reuses keep-alive connections across calls', async () => {
    const { upstream, llm } = await setup();
    for (let i = 0; i < 5; i++) await llm.complete(ask());
    expect(upstream.requests).toHaveLength(5);
    expect(new Set(upstream.requests.map((r) => r.headers.connection ?? 'keep-alive'))).toEqual(new Set(['keep-alive']));
  });
});

describe('openAICompatible: upstream errors', () => {
  it.each(statusCodes)('maps a %i answer to %s', async (status, code, retryable) => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'status', status });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code, retryable, status });
  });

  it('reports a redirect as not retryable and not the upstream\'s fault, with where it points', async () => {
    const { upstream, llm } = await setup();
    for (const status of [301, 307, 308]) {
      upstream.enqueue({ kind: 'status', status, headers: { location: 'https://api.example.com/v2/chat/completions' } });
      // Before, a 3xx was a retryable SERVER_ERROR: retried to exhaustion and counted by a breaker as an outage.
      await expect(llm.complete(ask())).rejects.toMatchObject({
        code: 'HTTP_ERROR',
        status,
        retryable: false,
        upstreamFault: false,
        message: `${status} redirect to https://api.example.com/v2/chat/completions: sluice does not follow redirects; point baseUrl at the new address`,
      });
    }
  });

  it('recognises context_length_exceeded', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'status', status: 400, code: 'context_length_exceeded' });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'CONTEXT_LENGTH_EXCEEDED', providerCode: 'context_length_exceeded' });
  });

  it('parses retry-after-ms, retry-after seconds and an HTTP date on a 429', async () => {
    vi.useFakeTimers({ toFake: ['Date'], now: Date.parse('2026-01-01T00:00:00Z') });
    const { upstream, llm } = await setup();
    upstream.enqueue(
      { kind: 'status', status: 429, headers: { 'retry-after-ms': '1500' } },
      { kind: 'status', status: 429, headers: { 'retry-after': '3' } },
      { kind: 'status', status: 429, headers: { 'retry-after': 'Thu, 01 Jan 2026 00:00:20 GMT' } },
    );
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'RATE_LIMITED', retryAfterMs: 1500 });
    await expect(llm.complete(ask())).rejects.toMatchObject({ retryAfterMs: 3000 });
    await expect(llm.complete(ask())).rejects.toMatchObject({ retryAfterMs: 20_000 });
  });

  it('honours x-should-retry', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'status', status: 500, headers: { 'x-should-retry': 'false' } });
    upstream.enqueue({ kind: 'status', status: 400, headers: { 'x-should-retry': 'true' } });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR', retryable: false });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'BAD_REQUEST', retryable: true });
  });

  it('turns an HTML error page into a typed error with a readable message', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'html', status: 502 });
    const error = await llm.complete(ask()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'SERVER_ERROR', status: 502 });
    expect((error as Error).message).not.toContain('<');
  });

  it('rejects a 200 whose body is not JSON as MALFORMED_RESPONSE', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'malformed' });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE' });
  });

  it('maps a 200 whose body is an error object to a typed error', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'error-body', type: 'server_error', message: 'The model crashed' });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'SERVER_ERROR', message: expect.stringContaining('crashed') });
  });

  it('reports a reset before the headers as a retryable CONNECTION error', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'reset' });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'CONNECTION', retryable: true });
  });

  it('reports a refused connection as CONNECTION', async () => {
    const { upstream } = await setup();
    const url = upstream.url;
    await upstream.close();
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: url, apiKey }) });
    await expect(llm.complete(ask())).rejects.toMatchObject({ code: 'CONNECTION', retryable: true });
    await llm.close();
  });
});

describe('openAICompatible: streams', () => {
  it('streams deltas, asks for usage, and hides the usage chunk from a caller who did not ask', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'one two three' } });
    let usage: unknown;
    llm.use(async function spy(ctx, next) {
      await next();
      ctx.onSettled((settled) => {
        usage = settled.usage;
      });
    });
    const chunks = await collect(llm.stream(ask()));
    expect(chunks.map((c) => c.choices[0]?.delta.content ?? '').join('')).toBe('one two three');
    expect(chunks.every((c) => c.choices.length > 0)).toBe(true);
    expect(upstream.requests[0]?.body).toMatchObject({ stream: true, stream_options: { include_usage: true } });
    expect(usage).toMatchObject({ prompt_tokens: expect.any(Number), completion_tokens: expect.any(Number) });
  });

  it('passes the usage chunk to a caller who asked for it', async () => {
    const { llm } = await setup();
    const chunks = await collect(llm.stream({ ...ask(), stream_options: { include_usage: true } }));
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { total_tokens: expect.any(Number) } });
  });

  it('does not ask for usage when includeUsage is false', async () => {
    const { upstream, llm } = await setup({ transport: { includeUsage: false } });
    await collect(llm.stream(ask()));
    expect((upstream.requests[0]?.body as { stream_options?: unknown }).stream_options).toBeUndefined();
  });

  it('reports a stream that ends without [DONE] as STREAM_CUT, never as success', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
    upstream.enqueue({ kind: 'cut', afterChunks: 3 });
    const seen: string[] = [];
    const reading = (async () => {
      for await (const chunk of llm.stream(ask())) seen.push(chunk.choices[0]?.delta.content ?? '');
    })();
    await expect(reading).rejects.toMatchObject({ code: 'STREAM_CUT', chunksReceived: 3 });
    expect(seen).toHaveLength(3);
  });

  it('reports a connection reset mid-stream as STREAM_CUT', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f' } });
    upstream.enqueue({ kind: 'reset', at: 'mid-stream', afterChunks: 2 });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'STREAM_CUT', retryable: true });
  });

  it.each(['event', 'data'] as const)('turns an SSE error (%s style) mid-stream into a typed error', async (style) => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d' } });
    upstream.enqueue({ kind: 'sse-error', afterChunks: 2, style, type: 'server_error', message: 'overloaded' });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
  });

  it('rejects a malformed SSE event as MALFORMED_RESPONSE', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d' } });
    upstream.enqueue({ kind: 'malformed', afterChunks: 1 });
    await expect(collect(llm.stream(ask()))).rejects.toMatchObject({ code: 'MALFORMED_RESPONSE' });
  });

  it('aborts the upstream request and releases the socket when the caller stops iterating', async () => {
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c d e f g h', chunkDelayMs: 0 } });
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 60_000 });
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    let outcome: string | undefined;
    llm.use(async function spy(ctx, next) {
      ctx.onSettled((settled) => {
        outcome = settled.outcome;
      });
      await next();
    });
    for await (const chunk of llm.stream(ask())) {
      expect(chunk).toBeDefined();
      break;
    }
    expect(outcome).toBe('cancelled');
    vi.useRealTimers();
    // The pool still works: the next call gets a fresh, healthy connection.
    await expect(llm.complete(ask())).resolves.toBeDefined();
  });
});

describe('openAICompatible: timeouts and abort (fake time)', () => {
  it('fails with a first-byte TIMEOUT when headers do not come', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, llm } = await setup({ transport: { firstByteTimeoutMs: 5_000 } });
    upstream.enqueue({ kind: 'hang' });
    const call = llm.complete(ask());
    const settled = expect(call).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'first-byte', retryable: true });
    await upstream.waitForRequests(1);
    await vi.advanceTimersByTimeAsync(5_000);
    await settled;
  });

  it('fails with the attempt TIMEOUT (60 s by default) on a slow non-stream answer', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, llm } = await setup({ transport: { firstByteTimeoutMs: 120_000 } });
    upstream.enqueue({ kind: 'delay', latencyMs: 90_000 });
    const call = llm.complete(ask());
    const settled = expect(call).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'attempt' });
    await upstream.waitForRequests(1);
    await vi.advanceTimersByTimeAsync(60_000);
    await settled;
  });

  it('fails with an idle TIMEOUT when a stream goes quiet', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, llm } = await setup({ upstream: { reply: 'a b c' }, transport: { idleTimeoutMs: 10_000 } });
    upstream.enqueue({ kind: 'delay', chunkDelayMs: 30_000 });
    const reading = collect(llm.stream(ask()));
    const settled = expect(reading).rejects.toMatchObject({ code: 'TIMEOUT', phase: 'idle' });
    await upstream.waitForRequests(1);
    // The idle timer starts once the headers are in, which real I/O decides;
    // two steps of 10 s stay well inside the upstream's 30 s of silence.
    await vi.advanceTimersByTimeAsync(10_000);
    await vi.advanceTimersByTimeAsync(10_000);
    await settled;
  });

  it('stops at the call deadline with a non-retryable TIMEOUT', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'hang' });
    const call = llm.complete(ask(), { timeoutMs: 2_000 });
    const settled = expect(call).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED', final: true, retryable: false });
    await upstream.waitForRequests(1);
    await vi.advanceTimersByTimeAsync(2_000);
    await settled;
  });

  it('rejects with ABORTED the moment the caller aborts', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const call = llm.complete(ask(), { signal: controller.signal });
    await upstream.waitForRequests(1);
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: 'ABORTED', retryable: false });
  });
});

describe('openAICompatible: secrets', () => {
  it('never puts the API key in an error, its cause, or an event', async () => {
    const { upstream, llm } = await setup();
    const events: unknown[] = [];
    for (const name of ['request', 'response'] as const) llm.events.on(name, (e) => events.push(e));
    upstream.enqueue(
      { kind: 'status', status: 401, message: `Incorrect API key provided: ${apiKey}` },
      { kind: 'status', status: 400, body: { error: { message: `echo Authorization: Bearer ${apiKey}` } } },
      { kind: 'html', status: 502, body: `<html><title>bad ${apiKey}</title></html>` },
      { kind: 'error-body', message: `key ${apiKey}` },
      { kind: 'reset' },
      { kind: 'malformed' },
    );
    const errors: unknown[] = [];
    for (let i = 0; i < 6; i++) errors.push(await llm.complete(ask()).catch((e: unknown) => e));
    upstream.enqueue({ kind: 'sse-error', afterChunks: 1, message: `key ${apiKey}` });
    errors.push(await collect(llm.stream(ask())).catch((e: unknown) => e));
    expect(errors.every((e) => e instanceof Error)).toBe(true);
    const dump = inspect([errors, events], { depth: 20, showHidden: true }) + JSON.stringify(events);
    expect(dump).not.toContain(apiKey);
    expect(dump).not.toMatch(/Bearer (?!\[redacted\])/);
  });

  it('masks a key echoed in the error code, a response header, and across the 200-character cut', async () => {
    const { upstream, llm } = await setup();
    upstream.enqueue(
      { kind: 'status', status: 401, code: apiKey, message: 'no' },
      { kind: 'status', status: 429, headers: { 'x-echo-key': apiKey, 'x-echo-auth': `Bearer ${apiKey}` } },
      { kind: 'html', status: 502, body: `<html><body>${'a'.repeat(190)}${apiKey} and the rest</body></html>` },
    );
    const seen: unknown[] = [];
    llm.use(async function look(ctx, next) {
      try {
        await next();
      } finally {
        seen.push(ctx.responseHeaders);
      }
    });
    const errors: unknown[] = [];
    for (let i = 0; i < 3; i++) errors.push(await llm.complete(ask()).catch((e: unknown) => e));
    expect(errors[0]).toMatchObject({ code: 'AUTHENTICATION', providerCode: '[redacted]' });
    expect(errors[1]).toMatchObject({ headers: { 'x-echo-key': '[redacted]', 'x-echo-auth': 'Bearer [redacted]' } });
    const dump = inspect([errors, seen], { depth: 20, showHidden: true });
    expect(dump).not.toContain(apiKey.slice(0, 10));
  });

  it('masks a key echoed in a success response header from ctx.responseHeaders', async () => {
    const { llm } = await setup({ upstream: { headers: { 'x-echo-key': apiKey } } });
    let headers: Readonly<Record<string, string>> | undefined;
    llm.use(async function look(ctx, next) {
      await next();
      headers = ctx.responseHeaders;
    });
    await llm.complete(ask());
    expect(headers?.['x-echo-key']).toBe('[redacted]');
    await collect(llm.stream(ask()));
    expect(headers?.['x-echo-key']).toBe('[redacted]');
  });

  it('masks the value of a credential header passed in headers, like the key', async () => {
    const { upstream, llm } = await setup({ transport: { apiKey: null, headers: { 'api-key': 'azure-secret-123' } } });
    upstream.enqueue({ kind: 'status', status: 401, message: 'bad key azure-secret-123' });
    const error = await llm.complete(ask()).catch((e: unknown) => e);
    expect(inspect(error, { depth: 20 })).not.toContain('azure-secret-123');
  });
});

describe('openAICompatible: options', () => {
  it('validates options, naming the field', () => {
    expect(() => openAICompatible({ baseUrl: 'not a url' })).toThrow(
      expect.objectContaining({ code: 'VALIDATION', field: 'openAICompatible.baseUrl' }),
    );
    expect(() => openAICompatible({ baseUrl: 'http://127.0.0.1:1/v1', connections: 0 })).toThrow(
      expect.objectContaining({ field: 'openAICompatible.connections' }),
    );
  });

  it.each([
    [{ baseURL: 'http://127.0.0.1:1/v1' }, 'openAICompatible.baseURL', 'did you mean baseUrl?'],
    [{ baseUrl: 'http://127.0.0.1:1/v1', apikey: 'k' }, 'openAICompatible.apikey', 'did you mean apiKey?'],
    [{ baseUrl: 'http://127.0.0.1:1/v1', idleTimeout: 5 }, 'openAICompatible.idleTimeout', 'did you mean idleTimeoutMs?'],
    [{ baseUrl: 'http://127.0.0.1:1/v1', timeout: 5 }, 'openAICompatible.timeout', 'attemptTimeoutMs'],
  ])('rejects an unknown option with what was meant: %o', (options, field, hint) => {
    expect(() => openAICompatible(options as never)).toThrow(
      expect.objectContaining({ code: 'VALIDATION', field, message: expect.stringContaining(hint) }),
    );
  });

  it('rejects an apiKey present but undefined (an unset variable), saying how to ask for no key', () => {
    const env: Record<string, string | undefined> = {};
    expect(() => openAICompatible({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: env.MISSING_KEY })).toThrow(
      expect.objectContaining({ code: 'VALIDATION', field: 'openAICompatible.apiKey', message: expect.stringContaining('apiKey: null') }),
    );
    expect(() => openAICompatible({ baseUrl: 'http://127.0.0.1:1/v1', apiKey: '' })).toThrow(
      expect.objectContaining({ field: 'openAICompatible.apiKey', message: expect.stringContaining('apiKey: null') }),
    );
  });

  it('refuses a base URL that is the endpoint itself, or carries credentials, saying what to give', () => {
    // Before, the first sent every request to …/chat/completions/chat/completions (a 404) and the second dropped the credentials.
    expect(() => openAICompatible({ baseUrl: 'https://api.example.com/v1/chat/completions', apiKey: 'k' })).toThrow(
      expect.objectContaining({ field: 'openAICompatible.baseUrl', message: expect.stringContaining('give its base (https://api.example.com/v1)') }),
    );
    expect(() => openAICompatible({ baseUrl: 'https://user:secret@api.example.com/v1', apiKey: 'k' })).toThrow(
      expect.objectContaining({ field: 'openAICompatible.baseUrl', message: expect.stringContaining('must not carry credentials') }),
    );
  });

  it("sends the base URL's query on every request (Azure's api-version)", async () => {
    const { upstream, llm } = await setup();
    const azure = createPipeline({ transport: openAICompatible({ baseUrl: `${upstream.url}?api-version=2024-10-21`, apiKey }) });
    await azure.complete(ask());
    await collect(azure.stream(ask()));
    // Before, the query was dropped: a base URL that needs one failed every call.
    expect(upstream.requests.map((request) => request.path)).toEqual([
      '/v1/chat/completions?api-version=2024-10-21',
      '/v1/chat/completions?api-version=2024-10-21',
    ]);
    await azure.close();
    await llm.close();
  });

  it('sends no Authorization header with apiKey: null', async () => {
    const { upstream, llm } = await setup({ transport: { apiKey: null } });
    await llm.complete(ask());
    expect(upstream.requests[0]?.headers.authorization).toBeUndefined();
  });
});
