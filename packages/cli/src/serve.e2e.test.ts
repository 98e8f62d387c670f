// The real `sluice serve` binary against a real mock upstream, with the openai SDK and raw HTTP as clients.
import { writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import OpenAI from 'openai';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ServeConfig } from './serve-options.js';
import { skipRedis, startRedis } from '../../redis/src/test-redis-server.js';
import { listening, runSluice, type SluiceRun, spawnSluice } from './test-spawn.js';

const upstreamKey = 'sk-upstream-SECRET-0123456789abcdef';
const aliceKey = 'sk-alice-0123456789abcdef';
const bobKey = 'sk-bob-0123456789abcdefgh';
const wrongKey = 'sk-wrong-PRESENTED-0123456789';
const prompt = [{ role: 'user' as const, content: 'hello there' }];

let dir: string;
const running: Array<{ run: SluiceRun; upstream: MockUpstream }> = [];
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-serve-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts `sluice serve` on a free port with `config` over the basics, and resolves its base URL once it listens. */
async function startServe(upstream: MockUpstream, config: Partial<ServeConfig> = {}, env: Record<string, string> = {}): Promise<{ url: string; run: SluiceRun }> {
  const path = join(dir, `serve-${running.length}.json`);
  const full: ServeConfig = {
    upstream: { baseUrl: upstream.url, apiKeyEnv: 'UPSTREAM_KEY' },
    keys: [{ key: aliceKey, tenant: 'alice' }, { keyEnv: 'BOB_KEY', tenant: 'bob' }],
    models: ['gpt-4.1', 'test-model'],
    retry: false,
    ...config,
  };
  writeFileSync(path, JSON.stringify(full));
  const run = spawnSluice(['serve', '--config', path, '--port', '0'], { UPSTREAM_KEY: upstreamKey, BOB_KEY: bobKey, ...env });
  running.push({ run, upstream });
  const url = await listening(run);
  return { url, run };
}

async function stopAll(): Promise<void> {
  for (const { run, upstream } of running.splice(0)) {
    if (run.child.exitCode === null) run.child.kill('SIGKILL');
    await run.done.catch(() => {});
    await upstream.close();
  }
}

describe('sluice serve', () => {
  let upstream: MockUpstream;
  let url: string;
  beforeAll(async () => {
    upstream = await mockUpstream({ reply: 'Hi from upstream, all good' });
    ({ url } = await startServe(upstream));
  });
  afterAll(stopAll);

  it('answers the openai SDK with JSON and with a stream, and sends the upstream its own key, never the virtual one', async () => {
    const openai = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    const reply = await openai.chat.completions.create({ model: 'gpt-4.1', messages: prompt });
    expect(reply.choices[0]?.message.content).toBe('Hi from upstream, all good');

    const bob = new OpenAI({ apiKey: bobKey, baseURL: url, maxRetries: 0 });
    const stream = await bob.chat.completions.create({ model: 'gpt-4.1', messages: prompt, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('Hi from upstream, all good');

    const sent = upstream.requests.filter((r) => r.path.endsWith('/chat/completions'));
    expect(sent.length).toBeGreaterThanOrEqual(2);
    for (const request of sent) {
      expect(request.headers.authorization).toBe(`Bearer ${upstreamKey}`);
      expect(JSON.stringify(request.headers)).not.toContain('x-sluice-tenant');
    }
  });

  it('answers a raw HTTP client with server-sent events ending in [DONE]', async () => {
    const response = await fetch(`${url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` },
      body: JSON.stringify({ model: 'gpt-4.1', messages: prompt, stream: true }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const events = (await response.text()).split('\n\n').filter((event) => event !== '');
    expect(events.at(-1)).toBe('data: [DONE]');
    const chunks = events.slice(0, -1).map((event) => JSON.parse(event.replace(/^data: /, '')) as { object: string; choices: Array<{ delta: { content?: string } }> });
    expect(chunks.every((chunk) => chunk.object === 'chat.completion.chunk')).toBe(true);
    expect(chunks.map((chunk) => chunk.choices[0]?.delta.content ?? '').join('')).toBe('Hi from upstream, all good');
  });

  it('answers a wrong or missing key 401 invalid_api_key, repeating neither key', async () => {
    for (const authorization of [`Bearer ${wrongKey}`, undefined]) {
      const response = await fetch(`${url}/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(authorization ? { authorization } : {}) },
        body: JSON.stringify({ model: 'gpt-4.1', messages: prompt }),
      });
      const text = await response.text();
      const headers = JSON.stringify([...response.headers]);
      expect(response.status).toBe(401);
      expect(JSON.parse(text)).toMatchObject({ error: { code: 'invalid_api_key', type: 'invalid_request_error' } });
      for (const secret of [upstreamKey, wrongKey, aliceKey, bobKey]) {
        expect(text).not.toContain(secret);
        expect(headers).not.toContain(secret);
      }
    }
    // The SDK sees the same as an AuthenticationError; nothing reached the upstream with the wrong key.
    const openai = new OpenAI({ apiKey: wrongKey, baseURL: url, maxRetries: 0 });
    await expect(openai.models.list()).rejects.toMatchObject({ status: 401, code: 'invalid_api_key' });
    expect(upstream.requests.some((r) => JSON.stringify(r.headers).includes(wrongKey))).toBe(false);
  });

  it('answers a 2 MiB body 413 and a bad one 400 naming the field', async () => {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` };
    const big = JSON.stringify({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'x'.repeat(2 << 20) }] });
    const tooLarge = await fetch(`${url}/chat/completions`, { method: 'POST', headers, body: big });
    expect(tooLarge.status).toBe(413);
    expect(await tooLarge.json()).toMatchObject({ error: { code: 'request_too_large' } });

    const cases: Array<[string, string, number, string]> = [
      ['{not json', 'body', 400, 'invalid_json'],
      [JSON.stringify({ messages: prompt }), 'model', 400, 'missing_required_parameter'],
      [JSON.stringify({ model: 'gpt-4.1', messages: [] }), 'messages', 400, 'missing_required_parameter'],
      [JSON.stringify({ model: 'not-served', messages: prompt }), 'model', 404, 'model_not_found'],
    ];
    for (const [body, param, status, code] of cases) {
      const response = await fetch(`${url}/chat/completions`, { method: 'POST', headers, body });
      expect({ status: response.status, body: await response.json() }).toMatchObject({ status, body: { error: { param, code } } });
    }
    const elsewhere = await fetch(`${url}/embeddings`, { method: 'POST', headers, body: '{}' });
    expect(elsewhere.status).toBe(404);
    // A request Node's parser refuses is answered in the same shape, not with a bare 400.
    const unparsable = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(url).port), '127.0.0.1', () => socket.write('POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nbad header: 1\r\n\r\n'));
      let text = '';
      socket.on('data', (part) => (text += String(part)));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(unparsable).toMatch(/^HTTP\/1\.1 400 /);
    expect(JSON.parse(unparsable.split('\r\n\r\n')[1] as string)).toMatchObject({ error: { type: 'invalid_request_error', code: 'bad_http_request' } });
  });

  it('names a port already in use instead of crashing', async () => {
    const path = join(dir, 'taken.json');
    writeFileSync(path, JSON.stringify({ upstream: { baseUrl: upstream.url }, keys: [{ key: aliceKey, tenant: 'alice' }] }));
    const end = await runSluice(['serve', '--config', path, '--port', new URL(url).port]);
    expect(end.code).toBe(1);
    expect(end.stderr).toMatch(/port: cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\)/);
  });

  it('lists the configured models and reports their circuits without secrets', async () => {
    const openai = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toEqual(['gpt-4.1', 'test-model']);

    // Without publicHealth, health is behind a key like every route.
    expect((await fetch(url.replace(/\/v1$/, '/health'))).status).toBe(401);
    const health = await fetch(url.replace(/\/v1$/, '/health'), { headers: { authorization: `Bearer ${aliceKey}` } });
    const text = await health.text();
    expect(health.status).toBe(200);
    expect(JSON.parse(text)).toMatchObject({
      status: 'ok',
      circuits: [{ model: 'gpt-4.1', state: 'closed' }, { model: 'test-model', state: 'closed' }],
      // The default memory store: how many records it holds, and how many it forgot early.
      store: { records: expect.any(Number), evicted: 0 },
    });
    expect(text).not.toContain(upstreamKey);
    expect(text).not.toContain(upstream.url);
  });
});

describe('sluice serve, per tenant and at shutdown', () => {
  afterEach(stopAll);

  it('refuses to start on a bad config, naming the field and printing no key', async () => {
    const path = join(dir, 'bad.json');
    writeFileSync(path, JSON.stringify({ upstream: {}, keys: [{ key: aliceKey, tenant: '' }] }));
    const end = await runSluice(['serve', '--config', path], { UPSTREAM_KEY: upstreamKey });
    expect(end.code).toBe(1);
    expect(end.stderr).toContain('config.keys.0');
    expect(end.stderr + end.stdout).not.toContain(aliceKey);
  });

  it('keeps a budget per tenant: one tenant refused 429 while the other is still served', async () => {
    const upstream = await mockUpstream({ reply: 'ok' });
    // A dollar a token: a call costs a few dollars, so a $20 budget lasts a few calls.
    const { url } = await startServe(upstream, {
      budget: { limitUsd: 20 },
      prices: { 'test-model': { input: 1_000_000, output: 1_000_000, maxOutput: 4 } },
    });
    const alice = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    const bob = new OpenAI({ apiKey: bobKey, baseURL: url, maxRetries: 0 });
    const ask = (client: OpenAI) => client.chat.completions.create({ model: 'test-model', messages: prompt, max_tokens: 2 });

    let refused: unknown;
    for (let call = 0; call < 10 && refused === undefined; call++) await ask(alice).catch((error: unknown) => (refused = error));
    expect(refused).toMatchObject({ status: 429, error: { sluice_code: 'BUDGET_EXCEEDED' } });
    const reply = await ask(bob);
    expect(reply.choices[0]?.message.content).toBe('ok');
    await expect(ask(alice)).rejects.toMatchObject({ status: 429 });
  });

  it('on SIGTERM lets a stream in flight finish, refuses new connections, and exits 0', async () => {
    const upstream = await mockUpstream({ reply: 'one two three four five six seven eight', chunkDelayMs: 150 });
    const { url, run } = await startServe(upstream);
    const openai = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', messages: prompt, stream: true });
    const stopping = new Promise<void>((resolve) => {
      let seen = '';
      run.child.stderr?.on('data', (text: string) => {
        seen += text;
        if (seen.includes('stopping:')) resolve();
      });
    });
    let text = '';
    let newConnection: Promise<string> | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      if (newConnection === undefined && text !== '') {
        run.child.kill('SIGTERM');
        await stopping;
        // While the stream drains, the server no longer listens.
        newConnection = fetch(`${url}/models`, { headers: { authorization: `Bearer ${aliceKey}` } }).then(
          (response) => `answered ${response.status}`,
          () => 'refused',
        );
      }
    }
    expect(await newConnection).toBe('refused');
    expect(text).toBe('one two three four five six seven eight');
    const end = await run.done;
    expect(end).toMatchObject({ code: 0, signal: null });
    expect(end.stderr).toContain('stopping: 1 request(s) in flight');
    expect(end.stderr).toContain('every request answered');
  });

  it('reports an open circuit on /health once a model fails', async () => {
    const upstream = await mockUpstream({ reply: 'ok' });
    const { url } = await startServe(upstream, { breaker: { failures: 1 } });
    upstream.enqueue({ kind: 'status', status: 500 });
    const bob = new OpenAI({ apiKey: bobKey, baseURL: url, maxRetries: 0 });
    await expect(bob.chat.completions.create({ model: 'gpt-4.1', messages: prompt })).rejects.toMatchObject({ status: 500 });
    await expect(bob.chat.completions.create({ model: 'gpt-4.1', messages: prompt })).rejects.toMatchObject({ status: 503, error: { sluice_code: 'CIRCUIT_OPEN' } });
    const health = await fetch(url.replace(/\/v1$/, '/healthz'), { headers: { authorization: `Bearer ${bobKey}` } });
    expect(await health.json()).toMatchObject({ status: 'degraded', circuits: [{ model: 'gpt-4.1', state: 'open', reason: expect.any(String) }, { model: 'test-model', state: 'closed' }] });
  });

  it('cuts a stream still running when the grace period ends, and still exits 0', async () => {
    const upstream = await mockUpstream({ reply: 'one two three four five six seven eight nine ten', chunkDelayMs: 300 });
    const { url, run } = await startServe(upstream, { shutdownGraceMs: 100 });
    const openai = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', messages: prompt, stream: true });
    const read = (async () => {
      let text = '';
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta.content ?? '';
        if (text !== '' && run.child.exitCode === null && !run.child.killed) run.child.kill('SIGTERM');
      }
      return text;
    })();
    await expect(read).rejects.toThrow();
    const end = await run.done;
    expect(end).toMatchObject({ code: 0, signal: null });
    expect(end.stderr).toContain('1 request(s) cut');
  });

  it('with publicHealth answers a keyless health check with the status alone, and the circuits only behind a key', async () => {
    const upstream = await mockUpstream({ reply: 'ok' });
    const { url } = await startServe(upstream, { publicHealth: true, breaker: { failures: 1 } });
    const health = url.replace(/\/v1$/, '/health');
    upstream.enqueue({ kind: 'status', status: 500 });
    const alice = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    await expect(alice.chat.completions.create({ model: 'gpt-4.1', messages: prompt })).rejects.toMatchObject({ status: 500 });

    for (const path of [health, url.replace(/\/v1$/, '/healthz/')]) {
      const open = await fetch(path);
      expect({ status: open.status, body: await open.json() }).toEqual({ status: 200, body: { status: 'ok' } });
    }
    const detail = await fetch(health, { headers: { authorization: `Bearer ${aliceKey}` } });
    expect(await detail.json()).toMatchObject({ status: 'degraded', circuits: [{ model: 'gpt-4.1', state: 'open' }, { model: 'test-model', state: 'closed' }] });
    // A wrong key is still refused, and no other route opens.
    expect((await fetch(health, { headers: { authorization: `Bearer ${wrongKey}` } })).status).toBe(401);
    expect((await fetch(`${url}/models`)).status).toBe(401);
    const keyless = await fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ model: 'gpt-4.1', messages: prompt }) });
    expect(keyless.status).toBe(401);
  });

  it('gives each request a deadline from x-sluice-timeout-ms or the default, bounded by maxTimeoutMs, and answers one that passes 504', async () => {
    // The deadlines are real time in the server's process: short, and the slow answers are cancelled, not waited for.
    const upstream = await mockUpstream({ reply: 'in time' });
    const { url } = await startServe(upstream, { timeoutMs: 300, maxTimeoutMs: 1_500 });
    const post = (headers: Record<string, string>, body: object = { model: 'gpt-4.1', messages: prompt }) =>
      fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}`, ...headers }, body: JSON.stringify(body) });
    const expired = { status: 504, body: { error: { type: 'server_error', code: 'DEADLINE_EXCEEDED', sluice_code: 'DEADLINE_EXCEEDED' } } };

    for (const [headers, stream] of [[{ 'x-sluice-timeout-ms': '300' }, false], [{}, false], [{ 'x-sluice-timeout-ms': '60000' }, false], [{}, true]] as const) {
      upstream.enqueue({ kind: 'delay', latencyMs: 4_000 });
      const response = await post(headers, { model: 'gpt-4.1', messages: prompt, stream });
      expect({ status: response.status, body: await response.json() }).toMatchObject(expired);
    }
    // Asked for generously but bounded, an answer in time is served.
    const served = await post({ 'x-sluice-timeout-ms': '60000' });
    expect({ status: served.status, body: await served.json() }).toMatchObject({ status: 200, body: { choices: [{ message: { content: 'in time' } }] } });

    for (const bad of ['abc', '0', '-5', '1.5']) {
      const response = await post({ 'x-sluice-timeout-ms': bad });
      expect({ status: response.status, body: await response.json() }).toMatchObject({ status: 400, body: { error: { code: 'invalid_value', param: 'x-sluice-timeout-ms' } } });
    }
  });

  it('with cache answers a repeated deterministic request from the cache, per tenant, JSON and stream, and says so in x-sluice-cache', async () => {
    const upstream = await mockUpstream({ reply: 'cached words here' });
    const { url } = await startServe(upstream, { cache: { ttlMs: 60_000 } });
    const post = (key: string, body: object, headers: Record<string, string> = {}) =>
      fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}`, ...headers }, body: JSON.stringify(body) });
    const sent = () => upstream.requests.filter((r) => r.path.endsWith('/chat/completions')).length;
    const ask = { model: 'gpt-4.1', messages: prompt, temperature: 0 };

    const first = await post(aliceKey, ask);
    expect(first.headers.get('x-sluice-cache')).toBe('miss');
    const firstBody = await first.json();
    const again = await post(aliceKey, ask);
    expect(again.headers.get('x-sluice-cache')).toBe('hit');
    expect(await again.json()).toEqual(firstBody);
    expect(sent()).toBe(1);
    // Another tenant is never served alice's answers.
    const bob = await post(bobKey, ask);
    expect(bob.headers.get('x-sluice-cache')).toBe('miss');
    await bob.arrayBuffer();
    expect(sent()).toBe(2);

    // A stream is replayed as a stream, chunk for chunk.
    const events = async (response: Response) => (await response.text()).split('\n\n').filter((event) => event.startsWith('data: '));
    const streamed = await post(aliceKey, { ...ask, stream: true });
    expect(streamed.headers.get('x-sluice-cache')).toBe('miss');
    const live = await events(streamed);
    const replayed = await post(aliceKey, { ...ask, stream: true });
    expect(replayed.headers.get('x-sluice-cache')).toBe('hit');
    expect(await events(replayed)).toEqual(live);
    expect(live.at(-1)).toBe('data: [DONE]');
    expect(sent()).toBe(3);

    // Not deterministic: not cached, unless the client asks; `off` skips it; a bad switch is named.
    const warm = { ...ask, temperature: 0.7 };
    expect((await post(aliceKey, warm)).headers.get('x-sluice-cache')).toBe('bypass');
    expect((await post(aliceKey, warm, { 'x-sluice-cache': 'on' })).headers.get('x-sluice-cache')).toBe('miss');
    expect((await post(aliceKey, warm, { 'x-sluice-cache': 'on' })).headers.get('x-sluice-cache')).toBe('hit');
    expect((await post(aliceKey, ask, { 'x-sluice-cache': 'off' })).headers.get('x-sluice-cache')).toBe('bypass');
    expect(sent()).toBe(6);
    const bad = await post(aliceKey, ask, { 'x-sluice-cache': 'maybe' });
    expect({ status: bad.status, body: await bad.json() }).toMatchObject({ status: 400, body: { error: { code: 'invalid_value', param: 'x-sluice-cache' } } });
  });

  it.each(['one upstream', 'deployments'])('with cache and %s, a client leaving a stream that an identical request joined does not cut it for the other', async (mode) => {
    const upstream = await mockUpstream({ reply: 'one two three four five six seven eight nine ten', chunkDelayMs: 40 });
    const routed: Partial<ServeConfig> = {
      upstream: undefined,
      deployments: [{ id: 'only', baseUrl: upstream.url, apiKeyEnv: 'UPSTREAM_KEY', model: 'gpt-4.1' }],
    };
    const { url } = await startServe(upstream, { cache: true, ...(mode === 'deployments' ? routed : {}) });
    const body = JSON.stringify({ model: 'gpt-4.1', messages: prompt, temperature: 0, stream: true });
    const post = (signal?: AbortSignal) =>
      fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` }, body, signal });
    const leaving = new AbortController();
    const first = await post(leaving.signal);
    const reader = (first.body as ReadableStream<Uint8Array>).getReader();
    await reader.read();
    const joined = await post();
    expect(joined.headers.get('x-sluice-cache')).toBe('shared');
    // The first client hangs up mid-stream.
    leaving.abort();
    await reader.read().catch(() => {});
    const events = (await joined.text()).split('\n\n').filter((event) => event.startsWith('data: '));
    expect(events.at(-1)).toBe('data: [DONE]');
    const text = events
      .slice(0, -1)
      .map((event) => (JSON.parse(event.slice(6)) as { choices: Array<{ delta: { content?: string } }> }).choices[0]?.delta.content ?? '')
      .join('');
    expect(text).toContain('one two three four five six seven eight nine ten');
    // Read whole by the call that joined, it was kept: the next one is a hit.
    const again = await post();
    expect(again.headers.get('x-sluice-cache')).toBe('hit');
    await again.arrayBuffer();
    expect(upstream.requests.filter((request) => request.path.endsWith('/chat/completions'))).toHaveLength(1);
  });
});

describe('sluice serve with deployments', () => {
  afterEach(stopAll);

  it('routes around a deployment that is down to the next one serving the model, and reports each circuit', async () => {
    // A deployment whose port refuses connections, and a healthy one serving the same public model under another name.
    const dead = await mockUpstream();
    const deadUrl = dead.url;
    await dead.close();
    const backup = await mockUpstream({ reply: 'from the backup' });
    const { url } = await startServe(backup, {
      upstream: undefined,
      models: undefined,
      breaker: { failures: 2 },
      deployments: [
        { id: 'primary', baseUrl: deadUrl, apiKeyEnv: 'UPSTREAM_KEY', model: 'gpt-4.1' },
        { id: 'backup', baseUrl: backup.url, apiKeyEnv: 'UPSTREAM_KEY', model: 'gpt-4.1-mini', group: 'gpt-4.1' },
      ],
      routing: { strategy: 'weighted' },
      ledger: join(dir, 'routed-spend.jsonl'),
      cache: true,
    });
    const openai = new OpenAI({ apiKey: aliceKey, baseURL: url, maxRetries: 0 });
    for (let i = 0; i < 4; i++) {
      const reply = await openai.chat.completions.create({ model: 'gpt-4.1', messages: prompt });
      expect(reply.choices[0]?.message.content).toBe('from the backup');
    }
    const stream = await openai.chat.completions.create({ model: 'gpt-4.1', messages: prompt, stream: true });
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text).toBe('from the backup');
    // The backup was asked for the model it serves, with its own key.
    const sent = backup.requests.filter((r) => r.path.endsWith('/chat/completions'));
    expect(sent.length).toBe(5);
    expect(sent.every((r) => (r.body as { model: string }).model === 'gpt-4.1-mini' && r.headers.authorization === `Bearer ${upstreamKey}`)).toBe(true);

    // The response names the deployment that answered.
    const raw = await fetch(`${url}/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${aliceKey}` }, body: JSON.stringify({ model: 'gpt-4.1', messages: prompt }) });
    expect(raw.headers.get('x-sluice-deployment')).toBe('backup');
    await raw.arrayBuffer();

    // The models are the groups the deployments serve; another is 404.
    expect((await openai.models.list()).data.map((m) => m.id)).toEqual(['gpt-4.1']);
    await expect(openai.chat.completions.create({ model: 'other-model', messages: prompt })).rejects.toMatchObject({ status: 404 });

    const health = await fetch(url.replace(/\/v1$/, '/health'), { headers: { authorization: `Bearer ${aliceKey}` } });
    const body = await health.text();
    expect(JSON.parse(body)).toMatchObject({
      status: 'degraded',
      circuits: [
        { deployment: 'primary', model: 'gpt-4.1', state: 'open' },
        { deployment: 'backup', model: 'gpt-4.1', state: 'closed' },
      ],
    });
    expect(body).not.toContain(deadUrl);
    expect(body).not.toContain(upstreamKey);

    // A cache hit reaches no deployment, and is recorded once, with what it saved.
    const deterministic = { model: 'gpt-4.1', messages: prompt, temperature: 0 };
    await openai.chat.completions.create(deterministic);
    const hit = await openai.chat.completions.create(deterministic).asResponse();
    expect(hit.headers.get('x-sluice-cache')).toBe('hit');
    const total = await runSluice(['cost', '--ledger', join(dir, 'routed-spend.jsonl'), '--by', 'total']);
    const totals = total.stdout.split('\n').filter((row) => row.startsWith('| total')).at(-1)?.split('|').map((cell) => cell.trim()) ?? [];
    expect([totals[2], totals[7]]).toEqual(['8', '1']);

    // Every attempt is priced at the model its deployment runs, and tagged with the deployment.
    const byModel = await runSluice(['cost', '--ledger', join(dir, 'routed-spend.jsonl'), '--by', 'model']);
    expect(byModel.stdout).toContain('gpt-4.1-mini');
    const byDeployment = await runSluice(['cost', '--ledger', join(dir, 'routed-spend.jsonl'), '--by', 'tag:deployment']);
    const rows = byDeployment.stdout.split('\n').filter((row) => row.startsWith('| backup'));
    expect(rows[0]?.split('|').map((cell) => cell.trim())[2]).toBe('7');
  });

  it('keeps each tenant on one deployment with routing.sticky by tenant (and spreads calls without it)', async () => {
    const a = await mockUpstream({ reply: 'from a' });
    const b = await mockUpstream({ reply: 'from b' });
    const deployments = [
      { id: 'a', baseUrl: a.url, apiKeyEnv: 'UPSTREAM_KEY', model: 'gpt-4.1' },
      { id: 'b', baseUrl: b.url, apiKeyEnv: 'UPSTREAM_KEY', model: 'gpt-4.1' },
    ];
    const answeredBy = async (url: string, key: string, calls: number) => {
      const seen = new Set<string | null>();
      for (let i = 0; i < calls; i++) {
        const response = await fetch(`${url}/chat/completions`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ model: 'gpt-4.1', messages: prompt }),
        });
        expect(response.status).toBe(200);
        seen.add(response.headers.get('x-sluice-deployment'));
        await response.arrayBuffer();
      }
      return [...seen];
    };
    const sticky = await startServe(a, { upstream: undefined, models: undefined, deployments, routing: { strategy: 'weighted', sticky: { key: { tag: 'tenant' } } } });
    expect(await answeredBy(sticky.url, aliceKey, 12)).toHaveLength(1);
    expect(await answeredBy(sticky.url, bobKey, 12)).toHaveLength(1);
    // The same deployments without sticky: 20 weighted calls land on both (all on one: about 2 in a million).
    const spread = await startServe(b, { upstream: undefined, models: undefined, deployments, routing: { strategy: 'weighted' } });
    expect((await answeredBy(spread.url, aliceKey, 20)).sort()).toEqual(['a', 'b']);
  });

  it('refuses upstream and deployments together, and a bad routing option, naming the field', async () => {
    const cases: Array<[object, string]> = [
      [{ upstream: { baseUrl: 'http://127.0.0.1:9/v1' }, deployments: [{ id: 'a', baseUrl: 'http://127.0.0.1:9/v1', model: 'gpt-4.1' }] }, 'config.deployments'],
      [{ deployments: [{ id: 'a', baseUrl: 'http://127.0.0.1:9/v1', model: 'gpt-4.1' }], routing: { strategy: 'fastest' } }, 'routing.strategy'],
      [{ deployments: [{ id: 'a', baseUrl: 'http://127.0.0.1:9/v1', model: 'gpt-4.1', apiKeyEnv: 'NOT_SET_ANYWHERE' }] }, 'deployments.0.apiKeyEnv'],
      [{ upstream: {}, routing: { strategy: 'weighted' } }, 'config.routing'],
      [{}, 'config.upstream'],
    ];
    for (const [config, field] of cases) {
      const path = join(dir, 'bad-routing.json');
      writeFileSync(path, JSON.stringify({ keys: [{ key: aliceKey, tenant: 'alice' }], ...config }));
      const end = await runSluice(['serve', '--config', path], { UPSTREAM_KEY: upstreamKey });
      expect({ code: end.code, field: end.stderr.includes(field) }, end.stderr).toEqual({ code: 1, field: true });
    }
  });
});

describe.skipIf(skipRedis())('sluice serve on a shared Redis', () => {
  afterEach(stopAll);

  it('two servers on one Redis spend one budget per tenant between them, and one that cannot reach Redis does not start', async () => {
    const redis = await startRedis();
    try {
      const upstream = await mockUpstream({ reply: 'ok' });
      // A dollar a token: a call costs a few dollars, so a $60 budget lasts several calls, whichever server takes them.
      const config: Partial<ServeConfig> = {
        budget: { limitUsd: 60 },
        prices: { 'test-model': { input: 1_000_000, output: 1_000_000, maxOutput: 4 } },
        store: { redis: { urlEnv: 'REDIS_URL', prefix: 'e2e:' } },
      };
      const env = { REDIS_URL: redis.url };
      const first = await startServe(upstream, config, env);
      const second = await startServe(upstream, config, env);
      const ask = (url: string, key: string) =>
        new OpenAI({ apiKey: key, baseURL: url, maxRetries: 0 }).chat.completions.create({ model: 'test-model', messages: prompt, max_tokens: 2 });
      /** Calls served before the first refusal, each sent to `urlOf(call)`; the refusal must be the budget's. */
      const servedUntilRefused = async (key: string, urlOf: (call: number) => string) => {
        for (let call = 0; call < 40; call++) {
          const refused = await ask(urlOf(call), key).then(() => undefined, (error: unknown) => error);
          if (refused !== undefined) {
            expect(refused).toMatchObject({ status: 429, error: { sluice_code: 'BUDGET_EXCEEDED' } });
            return call;
          }
        }
        throw new Error('never refused');
      };
      // One tenant on one server alone, then another spread over both: one budget between them, so the same count.
      const alone = await servedUntilRefused(bobKey, () => first.url);
      expect(alone).toBeGreaterThanOrEqual(3);
      expect(await servedUntilRefused(aliceKey, (call) => (call % 2 === 0 ? first.url : second.url))).toBe(alone);
      await expect(ask(second.url, aliceKey)).rejects.toMatchObject({ status: 429 });

      const path = join(dir, 'no-redis.json');
      writeFileSync(path, JSON.stringify({ upstream: { baseUrl: upstream.url }, keys: [{ key: aliceKey, tenant: 'alice' }], store: { redis: { urlEnv: 'REDIS_URL' } } }));
      const down = await runSluice(['serve', '--config', path], { REDIS_URL: 'redis://:hunter2@127.0.0.1:9' });
      expect(down.code).toBe(1);
      expect(down.stderr).toContain('store.redis.urlEnv');
      expect(down.stderr + down.stdout).not.toContain('hunter2');
    } finally {
      await redis.stop();
    }
  });
});

