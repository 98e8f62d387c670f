import { describe, expect, it } from 'vitest';
import { SluiceError } from './errors.js';
import { toFetch } from './to-fetch.js';
import { ask, setup } from './test-helpers.js';

const post = (body: unknown, path = '/v1/chat/completions') =>
  new Request(`http://sluice.local${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });


describe('toFetch as a server handler', () => {
  it('answers a Request with the completion as JSON', async () => {
    const { llm } = await setup({ upstream: { reply: 'Hi!' } });
    const response = await toFetch(llm, { fallback: null })(post(ask()));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toMatchObject({ choices: [{ message: { content: 'Hi!' } }] });
  });

  it('answers a stream as SSE ending in [DONE]', async () => {
    const { llm } = await setup({ upstream: { reply: 'a b' } });
    const response = await toFetch(llm)(post({ ...ask(), stream: true }));
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const text = await response.text();
    const events = text.split('\n\n').filter(Boolean);
    expect(events.at(-1)).toBe('data: [DONE]');
    expect(events.slice(0, -1).every((event) => event.startsWith('data: {"id"'))).toBe(true);
  });

  it('answers 404 for other routes with fallback: null, and 400 for a body that is not JSON', async () => {
    const { llm, upstream } = await setup();
    const handle = toFetch(llm, { fallback: null });
    expect((await handle(new Request('http://sluice.local/v1/models'))).status).toBe(404);
    const bad = await handle(new Request('http://sluice.local/v1/chat/completions', { method: 'POST', body: '{' }));
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { sluice_code: 'VALIDATION', type: 'invalid_request_error', param: 'body' } });
    // OpenAI's param is the field within the request body; the message still says where.
    const wrong = await handle(post({ ...ask(), messages: [{ role: 'robot', content: 'Hi' }] }));
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({
      error: { param: 'messages.0.role', message: expect.stringMatching(/^request\.messages\.0\.role: /) },
    });
    expect(upstream.requests).toHaveLength(0);
  });

  it('answers a local refusal with the status it names, retry-after and x-should-retry: false', async () => {
    const { llm, upstream } = await setup();
    llm.use(async function circuit() {
      throw new SluiceError('CIRCUIT_OPEN', 'circuit open for model gpt-4.1', { retryAfterMs: 2_500, httpStatus: 503 });
    });
    const response = await toFetch(llm)(post(ask()));
    expect(response.status).toBe(503);
    expect(Object.fromEntries(response.headers)).toMatchObject({ 'retry-after': '3', 'retry-after-ms': '2500', 'x-should-retry': 'false' });
    expect(await response.json()).toMatchObject({ error: { code: 'CIRCUIT_OPEN', type: 'server_error' } });
    expect(upstream.requests).toHaveLength(0);
  });

  it('falls back on the error data for a code it does not know', async () => {
    const { llm } = await setup();
    llm.use(async function quota() {
      throw new SluiceError('SOMETHING_LOCAL', 'wait', { retryAfterMs: 1_000 });
    });
    expect((await toFetch(llm)(post(ask()))).status).toBe(429);
  });

  it('puts an upstream error in the stream once the first chunk has gone', async () => {
    const { llm, upstream } = await setup({ upstream: { reply: 'a b c d e' } });
    upstream.enqueue({ kind: 'sse-error', afterChunks: 2, code: 'server_error' });
    const response = await toFetch(llm)(post({ ...ask(), stream: true }));
    expect(response.status).toBe(200);
    const events = (await response.text()).split('\n\n').filter(Boolean);
    expect(events).toHaveLength(3);
    expect(JSON.parse(events[2]!.slice(6))).toMatchObject({ error: { code: 'server_error' } });
  });

  it('answers a failure before the first chunk with its status', async () => {
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'status', status: 401 });
    const response = await toFetch(llm)(post({ ...ask(), stream: true }));
    expect(response.status).toBe(401);
    expect(JSON.stringify(await response.json())).not.toContain('sk-test');
  });

  it('takes tags from the request headers', async () => {
    const { llm } = await setup();
    const seen: Array<Record<string, string>> = [];
    llm.use(async function look(ctx, next) {
      seen.push({ ...ctx.tags });
      await next();
    });
    const handle = toFetch(llm, { tags: (headers) => ({ tenant: headers.get('x-tenant') ?? 'none' }) });
    await handle('http://sluice.local/v1/chat/completions', { method: 'POST', headers: { 'x-tenant': 'acme' }, body: JSON.stringify(ask()) });
    expect(seen).toEqual([{ tenant: 'acme' }]);
  });
});
