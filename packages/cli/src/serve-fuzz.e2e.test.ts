// The real `sluice serve` binary against requests no SDK would send: a seeded fuzz from the client side.
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ServeConfig } from './serve-options.js';
import { listening, type SluiceRun, spawnSluice } from './test-spawn.js';

const upstreamKey = 'sk-upstream-SECRET-0123456789abcdef';
const clientKey = 'sk-client-0123456789abcdef';
const requests = 300;

let dir: string;
let upstream: MockUpstream;
let run: SluiceRun;
let port: number;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-serve-fuzz-'));
  upstream = await mockUpstream({ seed: 3, faults: [{ probability: 0.1, fault: { kind: 'status', status: 503 } }] });
  const config: ServeConfig = {
    upstream: { baseUrl: upstream.url, apiKeyEnv: 'UPSTREAM_KEY' },
    keys: [{ key: clientKey, tenant: 'alice' }],
    models: ['gpt-4.1', 'gpt-4.1-mini'],
    cache: { ttlMs: 60_000 },
    trim: true,
    maxBodyBytes: 65_536,
  };
  const path = join(dir, 'serve.json');
  writeFileSync(path, JSON.stringify(config));
  run = spawnSluice(['serve', '--config', path, '--port', '0'], { UPSTREAM_KEY: upstreamKey });
  const url = await listening(run);
  port = Number(new URL(url).port);
});

afterAll(async () => {
  if (run.child.exitCode === null) run.child.kill('SIGKILL');
  await run.done.catch(() => {});
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

/** Sends `bytes` on a connection of its own and reads everything the server answers until it closes. */
function exchange(bytes: Buffer, leaveAfter?: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let text = '';
    const done = () => {
      socket.destroy();
      resolve(text);
    };
    socket.on('data', (part) => (text += part.toString('latin1')));
    socket.on('end', done);
    socket.on('error', done);
    socket.on('connect', () => {
      if (leaveAfter === undefined) socket.write(bytes);
      else socket.write(bytes.subarray(0, leaveAfter), () => done());
    });
  });
}

describe('sluice serve under a client-side fuzz', () => {
  it('answers every request it can read in OpenAI’s shape, never 500, never the upstream key, and keeps serving', async () => {
    const random = seededRandom(11);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const body = (): Buffer => {
      const valid = { model: pick(['gpt-4.1', 'gpt-4.1-mini']), messages: [{ role: 'user', content: `hello ${Math.floor(random() * 20)}` }], temperature: 0, ...(random() < 0.5 && { stream: true }) };
      const text = Buffer.from(JSON.stringify(valid));
      const at = Math.floor(random() * text.length);
      switch (pick(['valid', 'flip', 'cut', 'field', 'field', 'shape'])) {
        case 'flip':
          text[at] = Math.floor(random() * 256);
          return text;
        case 'cut':
          return text.subarray(0, at);
        case 'field': {
          const field = pick(['model', 'messages', 'temperature', 'max_tokens', 'n', 'stream', 'stream_options', 'tools', 'user', 'stop']);
          const value = pick<unknown>([null, -1, 0, 1e308, 'x', '', [], {}, [1, 2], { a: 1 }, true, [{ role: 'user' }], [{ role: 'bogus', content: 'x' }]]);
          return Buffer.from(JSON.stringify({ ...valid, [field]: value }));
        }
        case 'shape':
          return Buffer.from(pick(['[]', 'null', '1', '"x"', '{}', '{"model":"gpt-4.1"}', '{"messages":[]}']));
        default:
          return text;
      }
    };
    const request = (): { bytes: Buffer; leaveAfter?: number } => {
      const payload = body();
      const method = random() < 0.92 ? 'POST' : pick(['GET', 'PUT', 'DELETE', 'PATCH']);
      const path = random() < 0.9 ? '/v1/chat/completions' : pick(['/v1/models', '/', '/v1/embeddings', '/%%%', `/${'a'.repeat(3_000)}`]);
      const head = [`${method} ${path} HTTP/1.1`, 'host: 127.0.0.1', 'connection: close'];
      const auth = random();
      if (auth < 0.85) head.push(`authorization: Bearer ${clientKey}`);
      else if (auth < 0.9) head.push(`authorization: Bearer ${upstreamKey}`);
      else if (auth < 0.95) head.push(`authorization: ${pick(['Basic abc', 'Bearer', `bearer ${clientKey}x`])}`);
      if (random() < 0.9) head.push(`content-type: ${pick(['application/json', 'application/json', 'text/plain'])}`);
      if (random() < 0.05) head.push(`x-sluice-timeout-ms: ${pick(['0', '-1', 'abc', '1e400', '100000'])}`);
      if (random() < 0.05) head.push(`x-sluice-cache: ${pick(['on', 'off', 'maybe', ''])}`);
      if (random() < 0.05) head.push('bad header: 1');
      let framed = payload;
      const framing = pick(['length', 'length', 'length', 'chunked', 'too-short', 'huge', 'leave']);
      if (framing === 'chunked') {
        head.push('transfer-encoding: chunked');
        framed = Buffer.concat([Buffer.from(`${payload.length.toString(16)}\r\n`), payload, Buffer.from('\r\n0\r\n\r\n')]);
      } else if (framing === 'too-short') {
        // A declared length shorter than the body: the rest reads as a second request, which does not parse.
        head.push(`content-length: ${Math.max(0, payload.length - 5)}`);
      } else if (framing === 'huge') {
        head.push('content-length: 200000');
        framed = Buffer.concat([payload, Buffer.alloc(Math.max(0, 200_000 - payload.length), 32)]);
      } else head.push(`content-length: ${payload.length}`);
      const bytes = Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`), framed]);
      return framing === 'leave' ? { bytes, leaveAfter: Math.floor(bytes.length / 2) } : { bytes };
    };

    const wrong: string[] = [];
    const statuses: Record<string, number> = {};
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < requests) {
          next++;
          const { bytes, leaveAfter } = request();
          const answer = await exchange(bytes, leaveAfter);
          if (leaveAfter !== undefined) continue;
          const status = /^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1] ?? 'none';
          statuses[status] = (statuses[status] ?? 0) + 1;
          if (answer.includes(upstreamKey)) wrong.push(`the upstream key in an answer: ${answer.slice(0, 200)}`);
          if (status === 'none' || status === '500') wrong.push(`${status}: ${answer.slice(0, 300)} for ${bytes.toString('latin1').slice(0, 200)}`);
          if (Number(status) >= 400) {
            const text = answer.slice(answer.indexOf('\r\n\r\n') + 4).replace(/^[0-9a-f]+\r\n/, '');
            // Before, a request Node's parser refused got a bare "400 Bad Request" with no body.
            if (!/^\{"error":\{/.test(text)) wrong.push(`${status} without an OpenAI error body: ${answer.slice(0, 200)}`);
          }
        }
      }),
    );
    expect(wrong).toEqual([]);
    // The requests were really varied: answers, refusals of every kind.
    for (const status of ['200', '400', '401', '404', '413']) expect(statuses[status]).toBeGreaterThan(0);
    expect(run.child.exitCode).toBeNull();
    const models = await fetch(`http://127.0.0.1:${port}/v1/models`, { headers: { authorization: `Bearer ${clientKey}` } });
    expect(models.status).toBe(200);
  });
});
