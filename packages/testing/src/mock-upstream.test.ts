import { request as httpRequest, Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { mockUpstream, type FaultRule, type MockUpstream } from './index.js';
import { chat, post } from './test-client.js';

const open: MockUpstream[] = [];
async function start(options?: Parameters<typeof mockUpstream>[0]): Promise<MockUpstream> {
  const upstream = await mockUpstream(options);
  open.push(upstream);
  return upstream;
}
afterEach(async () => {
  await Promise.all(open.splice(0).map((upstream) => upstream.close()));
});

/** What a client observes of one request: its status, or that the connection failed. */
async function outcome(upstream: MockUpstream): Promise<number | 'network-error'> {
  try {
    const res = await post(upstream, chat());
    await res.text();
    return res.status;
  } catch {
    return 'network-error';
  }
}

async function outcomes(upstream: MockUpstream, count: number): Promise<Array<number | 'network-error'>> {
  const seen: Array<number | 'network-error'> = [];
  for (let i = 0; i < count; i++) seen.push(await outcome(upstream));
  return seen;
}

const rules: FaultRule[] = [
  { probability: 0.3, fault: { kind: 'status', status: 503 } },
  { probability: 0.2, fault: { kind: 'status', status: 429 } },
  { probability: 0.1, fault: { kind: 'reset' } },
];

describe('mockUpstream', () => {
  it('listens on 127.0.0.1 and gives the /v1 base URL', async () => {
    const upstream = await start();
    expect(upstream.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1$/);
  });

  it('records every request in order, before any fault, with lowercased headers and parsed body', async () => {
    const upstream = await start();
    upstream.enqueue({ kind: 'status', status: 500 });
    await (await post(upstream, chat('first'), { headers: { 'X-Custom': 'A', 'content-type': 'application/json' } })).text();
    await (await post(upstream, 'not json {')).text();
    await (await fetch(`${upstream.url}/models`)).text();

    const [first, second, third] = upstream.requests;
    expect(upstream.requests).toHaveLength(3);
    expect(first).toMatchObject({
      method: 'POST',
      path: '/v1/chat/completions',
      headers: { 'x-custom': 'A' },
      body: chat('first'),
      fault: { kind: 'status', status: 500 },
    });
    expect(typeof first?.at).toBe('number');
    expect(second).toMatchObject({ body: 'not json {', fault: undefined });
    expect(third).toMatchObject({ method: 'GET', path: '/v1/models', body: '' });
  });

  it('gives a snapshot of the requests that later requests do not change', async () => {
    const upstream = await start();
    const before = upstream.requests;
    await (await post(upstream, chat())).text();
    expect(before).toHaveLength(0);
    expect(upstream.requests).toHaveLength(1);
  });

  it('applies enqueued faults to the next requests in order, one each, then answers normally', async () => {
    const upstream = await start();
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 429 });
    upstream.enqueue({ kind: 'html' });
    expect(await outcomes(upstream, 4)).toEqual([503, 429, 502, 200]);
  });

  it('lets an enqueued fault (even ok) win over a random one', async () => {
    const upstream = await start({ faults: [{ probability: 1, fault: { kind: 'status', status: 503 } }] });
    upstream.enqueue({ kind: 'status', status: 429 }, { kind: 'ok' });
    expect(await outcomes(upstream, 3)).toEqual([429, 200, 503]);
  });

  it('gives the same fault sequence for the same seed and requests', async () => {
    const a = await start({ seed: 42, faults: rules });
    const b = await start({ seed: 42, faults: rules });
    const seenA = await outcomes(a, 40);
    const seenB = await outcomes(b, 40);
    expect(seenA).toEqual(seenB);
    expect(a.requests.map((r) => r.fault)).toEqual(b.requests.map((r) => r.fault));
    expect(new Set(seenA)).toEqual(new Set([200, 503, 429, 'network-error']));
  });

  it('gives a different fault sequence for a different seed', async () => {
    const a = await start({ seed: 42, faults: rules });
    const b = await start({ seed: 7, faults: rules });
    expect(await outcomes(a, 40)).not.toEqual(await outcomes(b, 40));
  });

  it('keeps the random faults of later requests whatever was enqueued before them', async () => {
    const a = await start({ seed: 3, faults: rules });
    const b = await start({ seed: 3, faults: rules });
    a.enqueue({ kind: 'status', status: 418 });
    const seenA = await outcomes(a, 20);
    const seenB = await outcomes(b, 20);
    expect(seenA[0]).toBe(418);
    expect(seenA.slice(1)).toEqual(seenB.slice(1));
  });

  it('reset() clears requests and queue and replays the same random sequence', async () => {
    const upstream = await start({ seed: 9, faults: rules });
    const first = await outcomes(upstream, 20);
    upstream.enqueue({ kind: 'status', status: 418 });
    upstream.reset();
    expect(upstream.requests).toEqual([]);
    expect(await outcomes(upstream, 20)).toEqual(first);
  });

  it('adds its headers to every response', async () => {
    const upstream = await start({ headers: { 'x-ratelimit-remaining-requests': '99' } });
    upstream.enqueue({ kind: 'status', status: 429, headers: { 'retry-after': '2' } });
    const limited = await post(upstream, chat());
    const ok = await post(upstream, chat());
    expect(limited.headers.get('x-ratelimit-remaining-requests')).toBe('99');
    expect(limited.headers.get('retry-after')).toBe('2');
    expect(ok.headers.get('x-ratelimit-remaining-requests')).toBe('99');
    await Promise.all([limited.text(), ok.text()]);
  });

  it('answers 404 with an OpenAI error on another path, without using a scripted fault', async () => {
    const upstream = await start();
    upstream.enqueue({ kind: 'status', status: 503 });
    const res = await fetch(`${upstream.url}/embeddings`, { method: 'POST', body: '{}' });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({
      error: { message: 'Invalid URL (POST /v1/embeddings)', type: 'invalid_request_error', param: null, code: null },
    });
    expect(await outcome(upstream)).toBe(503);
  });

  it('answers 400 to a body that is not JSON or lacks messages', async () => {
    const upstream = await start();
    const garbled = await post(upstream, '{"model":');
    const missing = await post(upstream, { model: 'gpt-4.1' });
    expect(garbled.status).toBe(400);
    expect(await garbled.json()).toMatchObject({ error: { type: 'invalid_request_error' } });
    expect(missing.status).toBe(400);
    expect(await missing.json()).toMatchObject({ error: { param: 'messages' } });
  });

  it('keeps connections alive between requests', async () => {
    const upstream = await start();
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const send = () =>
      new Promise<boolean>((resolve, reject) => {
        const req = httpRequest(`${upstream.url}/chat/completions`, { method: 'POST', agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(req.reusedSocket));
        });
        req.on('error', reject);
        req.end(JSON.stringify(chat()));
      });
    expect(await send()).toBe(false);
    expect(await send()).toBe(true);
    expect(await send()).toBe(true);
    agent.destroy();
  });

  it('closes without hanging while a request hangs and a keep-alive socket idles', async () => {
    const upstream = await mockUpstream();
    await (await post(upstream, chat())).text();
    upstream.enqueue({ kind: 'hang' });
    const hung = post(upstream, chat());
    await upstream.waitForRequests(2);
    await upstream.close();
    await expect(hung).rejects.toThrow();
    await upstream.close();
  });

  it('lets a client abort a hung request', async () => {
    const upstream = await start();
    upstream.enqueue({ kind: 'hang' });
    const controller = new AbortController();
    const hung = post(upstream, chat(), { signal: controller.signal });
    await upstream.waitForRequests(1);
    controller.abort();
    await expect(hung).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('waitForRequests resolves at the count and rejects when closed first', async () => {
    const upstream = await mockUpstream();
    const two = upstream.waitForRequests(2);
    await (await post(upstream, chat())).text();
    await (await post(upstream, chat())).text();
    await expect(two).resolves.toBeUndefined();
    const never = upstream.waitForRequests(3);
    await upstream.close();
    await expect(never).rejects.toThrow('closed');
  });

  it('rejects options out of range, naming the field', async () => {
    await expect(mockUpstream({ latencyMs: -1 })).rejects.toThrow('latencyMs');
    await expect(mockUpstream({ chunks: 0 })).rejects.toThrow('chunks');
    await expect(mockUpstream({ faults: [{ probability: 1.5, fault: { kind: 'hang' } }] })).rejects.toThrow(
      'faults[0].probability',
    );
    await expect(
      mockUpstream({
        faults: [
          { probability: 0.6, fault: { kind: 'hang' } },
          { probability: 0.6, fault: { kind: 'reset' } },
        ],
      }),
    ).rejects.toThrow('add up');
  });

  it('names the field of a reply that is not a MockReply: given at once, returned in the 500 it answers', async () => {
    // Before, a bad reply object failed each request with 'the reply function threw: … .map is not a function'.
    await expect(mockUpstream({ reply: { toolCalls: 'get_weather' } as never })).rejects.toThrow(
      'mockUpstream: reply.toolCalls must be an array of { name, arguments? }, got string',
    );
    await expect(mockUpstream({ reply: { toolCalls: [{ arguments: {} }] } as never })).rejects.toThrow('reply.toolCalls[0].name must be a non-empty string');
    const upstream = await start({ reply: () => 42 as never });
    const answer = await post(upstream, chat());
    expect(answer.status).toBe(500);
    expect(await answer.json()).toMatchObject({ error: { message: "mockUpstream: the reply function's result must be a string, a MockReply object or null, got number" } });
    expect(() => upstream.enqueue({ kind: 'ok', reply: { content: 5 } as never })).toThrow('enqueue[0].reply must be a MockReply (its content must be a string or null, got number)');
  });
});
