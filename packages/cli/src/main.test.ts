import { linkSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from './main.js';
import { captureIo } from './test-io.js';

let dir: string;
let upstream: MockUpstream | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-main-'));
});
afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
  await rm(dir, { recursive: true, force: true });
});

const requestLine = (id: string, model = 'gpt-4.1') =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `say ${id}` }] } });
const outputLines = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as { custom_id: string; error: { code: string } | null });

describe('sluice batch (in process)', () => {
  it('reads the key from the variable --api-key-env names, sends it, and never prints it', async () => {
    upstream = await mockUpstream();
    upstream.enqueue({ kind: 'status', status: 401 });
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(input, `${requestLine('a')}\n${requestLine('b')}\n`);
    const io = captureIo({ MY_KEY: 'sk-secret-42' });
    const code = await main(['batch', input, '-o', output, '--base-url', upstream.url, '--api-key-env', 'MY_KEY', '--concurrency', '1'], io);
    expect(code, io.err()).toBe(0);
    expect(upstream.requests.map((request) => request.headers.authorization)).toEqual(['Bearer sk-secret-42', 'Bearer sk-secret-42']);
    expect(outputLines(output).map((line) => line.error?.code ?? 'ok')).toEqual(['AUTHENTICATION', 'ok']);
    for (const text of [io.out(), io.err(), readFileSync(output, 'utf8')]) expect(text).not.toContain('sk-secret-42');
  });

  it('refuses to start when the variable --api-key-env names is unset, naming it', async () => {
    const input = join(dir, 'requests.jsonl');
    writeFileSync(input, `${requestLine('a')}\n`);
    const io = captureIo();
    const code = await main(['batch', input, '-o', join(dir, 'out.jsonl'), '--base-url', 'http://127.0.0.1:9/v1', '--api-key-env', 'NOT_SET'], io);
    expect(code).toBe(1);
    expect(io.err()).toContain('NOT_SET is not set');
  });

  it('sends without a key to a local server when OPENAI_API_KEY is unset', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    writeFileSync(input, `${requestLine('a')}\n`);
    const code = await main(['batch', input, '-o', join(dir, 'out.jsonl'), '--base-url', upstream.url], captureIo());
    expect(code).toBe(0);
    expect(upstream.requests[0]?.headers.authorization).toBeUndefined();
  });

  it('names a bad config field with a did-you-mean and exits 1 without sending anything', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const config = join(dir, 'sluice.json');
    writeFileSync(input, `${requestLine('a')}\n`);
    writeFileSync(config, JSON.stringify({ concurency: 5 }));
    const io = captureIo();
    const code = await main(['batch', input, '-o', join(dir, 'out.jsonl'), '--config', config, '--base-url', upstream.url], io);
    expect(code).toBe(1);
    expect(io.err()).toMatch(/config\.concurency.*concurrency/);
    expect(upstream.requests).toHaveLength(0);
  });

  it('lets flags override the config file, section by section', async () => {
    upstream = await mockUpstream();
    upstream.enqueue({ kind: 'status', status: 503 }, { kind: 'status', status: 503 });
    const input = join(dir, 'requests.jsonl');
    const config = join(dir, 'sluice.json');
    const output = join(dir, 'out.jsonl');
    writeFileSync(input, `${requestLine('a')}\n`);
    // The file asks for 5 attempts with a tiny backoff; the flag cuts attempts to 2 and keeps the backoff.
    writeFileSync(config, JSON.stringify({ retry: { attempts: 5, backoff: { baseMs: 1, maxMs: 2 } } }));
    const code = await main(['batch', input, '-o', output, '--config', config, '--attempts', '2', '--base-url', upstream.url], captureIo());
    expect(code).toBe(0);
    expect(upstream.requests).toHaveLength(2);
    expect(outputLines(output)[0]?.error?.code).toBe('SERVER_ERROR');
  });

  it('names an input file that does not exist and exits 1', async () => {
    const io = captureIo();
    expect(await main(['batch', join(dir, 'missing.jsonl'), '-o', join(dir, 'out.jsonl')], io)).toBe(1);
    expect(io.err()).toContain('missing.jsonl');
  });

  it('refuses an output or a ledger that is the input (or each other), by name or by link, before sending or writing anything', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const requests = `${requestLine('a')}\n${requestLine('b')}\n`;
    writeFileSync(input, requests);
    const run = async (...args: string[]) => {
      const io = captureIo();
      const code = await main(['batch', input, '--base-url', (upstream as MockUpstream).url, ...args], io);
      return { code, err: io.err() };
    };
    // Before, the input was read as the output to resume (its lines "already answered") and the answers appended to it.
    expect(await run('-o', input)).toMatchObject({ code: 1, err: expect.stringContaining(`output: ${input} is the input file`) });
    expect(await run('-o', join(dir, '.', 'requests.jsonl'))).toMatchObject({ code: 1 });
    linkSync(input, join(dir, 'linked.jsonl'));
    expect(await run('-o', join(dir, 'linked.jsonl'))).toMatchObject({ code: 1, err: expect.stringContaining('is the input file') });
    const output = join(dir, 'out.jsonl');
    expect(await run('-o', output, '--ledger', output)).toMatchObject({ code: 1, err: expect.stringContaining(`ledger: ${output} is the output file`) });
    expect(await run('-o', output, '--ledger', input)).toMatchObject({ code: 1, err: expect.stringContaining('ledger:') });
    expect(readFileSync(input, 'utf8')).toBe(requests);
    expect(upstream.requests).toHaveLength(0);
  });

  it('names an input that is a directory and an output whose directory does not exist', async () => {
    mkdirSync(join(dir, 'sub'));
    const io = captureIo();
    expect(await main(['batch', join(dir, 'sub'), '-o', join(dir, 'out.jsonl')], io)).toBe(1);
    expect(io.err()).toContain(`input: ${join(dir, 'sub')} is a directory`);
    writeFileSync(join(dir, 'in.jsonl'), `${requestLine('a')}\n`);
    const missing = captureIo();
    expect(await main(['batch', join(dir, 'in.jsonl'), '-o', join(dir, 'nope', 'out.jsonl')], missing)).toBe(1);
    expect(missing.err()).toContain(`output: the directory of ${join(dir, 'nope', 'out.jsonl')} does not exist`);
  });

  it('rejects an unknown flag as a usage error (exit 2)', async () => {
    const io = captureIo();
    expect(await main(['batch', 'x.jsonl', '-o', 'y.jsonl', '--concurrenc', '3'], io)).toBe(2);
    expect(io.err()).toContain('--concurrenc');
  });

  it('stops on a spent budget without writing the refused line, and says how to resume', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'out.jsonl');
    writeFileSync(input, `${['a', 'b', 'c'].map((id) => requestLine(id)).join('\n')}\n`);
    const io = captureIo();
    // gpt-4.1's worst case (32,768 output tokens at $8/M) is about $0.26: it does not fit $0.10.
    const code = await main(['batch', input, '-o', output, '--base-url', upstream.url, '--budget-usd', '0.1'], io);
    expect(code).toBe(3);
    expect(io.err()).toContain('budget is spent');
    expect(outputLines(output)).toEqual([]);
    expect(upstream.requests).toHaveLength(0);

    // A budget that fits resumes and finishes the file.
    expect(await main(['batch', input, '-o', output, '--base-url', upstream.url, '--budget-usd', '5'], captureIo())).toBe(0);
    expect(outputLines(output).map((line) => line.custom_id).sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('sluice cost (in process)', () => {
  it('projects the original comparison at 10,000 requests a day, cheapest first', async () => {
    const io = captureIo();
    expect(await main(['cost', '--original'], io)).toBe(0);
    const rows = io.out().split('\n').filter((line) => /^\| [a-z]/.test(line)).map((line) => line.split('|')[1]?.trim());
    expect(rows).toEqual(['model', 'deepseek-v3.2', 'gemini-2.5-flash', 'gpt-4.1', 'claude-sonnet-4.5']);
    expect(io.out()).toMatch(/\| gpt-4\.1 +\| +10,000 \| 3,000 \| +800 \| +\$0\.0124 \| \$124\.00 \| +\$3,720\.00 \| +\$45,260\.00 \|/);
  });

  it('projects a workload of the user for chosen models of a price file', async () => {
    const prices = join(dir, 'prices.json');
    writeFileSync(prices, JSON.stringify({ 'my-model': { input: 1, output: 2, contextWindow: 8_000, maxOutput: 1_000 } }));
    const io = captureIo();
    const code = await main(['cost', '--prices', prices, '--models', 'gpt-4.1,my-model', '--requests-per-day', '1000', '--input-tokens', '1000', '--output-tokens', '500'], io);
    expect(code, io.err()).toBe(0);
    const models = io.out().trim().split('\n').slice(2).map((line) => line.split('|')[1]?.trim());
    // my-model: 1000 × (1000 × $1 + 500 × $2) / 1M = $2/day; gpt-4.1: 1000 × (1000 × 2 + 500 × 8) / 1M = $6/day.
    expect(models).toEqual(['my-model', 'gpt-4.1']);
    expect(io.out()).toMatch(/\| my-model +\| +1,000 \| +1,000 \| +500 \| +\$0\.002 \| +\$2\.00 \| +\$60\.00 \|/);
  });

  it('names a model with no price', async () => {
    const io = captureIo();
    expect(await main(['cost', '--models', 'no-such-model'], io)).toBe(1);
    expect(io.err()).toContain('no-such-model');
  });

  it('says a ledger with no record (in the span) has no spend, rather than a span of 1970', async () => {
    const ledger = join(dir, 'spend.jsonl');
    writeFileSync(ledger, '');
    const io = captureIo();
    expect(await main(['cost', '--ledger', ledger], io)).toBe(0);
    expect(io.out()).toMatch(new RegExp(`^no spend in ${ledger.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, by model\n`));
    expect(io.out()).not.toContain('1970');
    const since = captureIo();
    expect(await main(['cost', '--ledger', ledger, '--since', '2026-01-01'], since)).toBe(0);
    expect(since.out()).toContain(`no spend in ${ledger} since 2026-01-01T00:00:00.000Z, by model`);
    const folder = captureIo();
    expect(await main(['cost', '--ledger', dir], folder)).toBe(1);
    expect(folder.err()).toContain(`ledger: ${dir} is a directory, not a cost ledger`);
  });
});
