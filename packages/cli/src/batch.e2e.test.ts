// The real binary against a real mock upstream: what a user runs.
import { closeSync, existsSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSluice, spawnSluice } from './test-spawn.js';

let dir: string;
let upstream: MockUpstream | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-cli-'));
});
afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
  await rm(dir, { recursive: true, force: true });
});

const requestLine = (id: string, model = 'gpt-4.1') =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `say ${id}` }] } });

const readOutput = (path: string) =>
  readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as OutputLine);

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; request_id: string; body: Record<string, unknown> } | null;
  error: { code: string; message: string } | null;
}

/**
 * What is wrong with a line against the Batch API's output shape and the
 * answer that belongs to its custom_id, or undefined. A plain function, not
 * an expect() per field: ten thousand lines are checked in one assertion.
 */
function shapeProblem(line: OutputLine): string | undefined {
  if (Object.keys(line).sort().join() !== 'custom_id,error,id,response') return 'keys';
  if (!/^batch_req_[0-9a-f]{24}$/.test(line.id)) return 'id';
  if (line.error === null) {
    const body = line.response?.body as { object?: string; choices?: Array<{ message?: { content?: string } }>; usage?: object } | undefined;
    if (line.response?.status_code !== 200 || !line.response.request_id.startsWith('req_')) return 'response status or request_id';
    if (body?.object !== 'chat.completion' || body.usage === undefined) return 'response body';
    // The mock echoes the prompt: the answer is this line's own, not a neighbour's.
    if (body.choices?.[0]?.message?.content !== `Echo: say ${line.custom_id}`) return 'answer of another line';
    return undefined;
  }
  if (typeof line.error.code !== 'string' || typeof line.error.message !== 'string') return 'error';
  if (line.response !== null && !(line.response.status_code >= 400 && 'error' in line.response.body)) return 'error response';
  return undefined;
}

async function waitForLines(path: string, lines: number, child: { exitCode: number | null }): Promise<void> {
  // A real child process writes the file: poll it (no fake time can stand in for another
  // process), reading only the bytes added since the last look.
  let offset = 0;
  let seen = 0;
  const buffer = Buffer.alloc(1 << 20);
  while (seen < lines && child.exitCode === null) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      continue;
    }
    try {
      for (let read = readSync(fd, buffer, 0, buffer.length, offset); read > 0; read = readSync(fd, buffer, 0, buffer.length, offset)) {
        for (let at = buffer.indexOf(10); at !== -1 && at < read; at = buffer.indexOf(10, at + 1)) seen++;
        offset += read;
      }
    } finally {
      closeSync(fd);
    }
  }
}

describe('sluice batch', () => {
  it('runs 10,000 lines with faults, is interrupted half-way, and resumes with no line lost or repeated', async () => {
    upstream = await mockUpstream({
      seed: 7,
      latencyMs: 10,
      faults: [
        { probability: 0.04, fault: { kind: 'status', status: 503 } },
        { probability: 0.02, fault: { kind: 'status', status: 429, headers: { 'retry-after-ms': '5' } } },
        { probability: 0.01, fault: { kind: 'status', status: 400 } },
        { probability: 0.01, fault: { kind: 'reset' } },
        { probability: 0.01, fault: { kind: 'malformed' } },
      ],
    });
    const ids = Array.from({ length: 10_000 }, (_, i) => `req-${i}`);
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    const config = join(dir, 'sluice.json');
    writeFileSync(input, `${ids.map((id) => requestLine(id)).join('\n')}\n`);
    writeFileSync(config, JSON.stringify({ concurrency: 64, retry: { attempts: 2, backoff: { baseMs: 5, maxMs: 20 } }, progressIntervalMs: 500 }));
    const args = ['batch', input, '-o', output, '--config', config, '--base-url', upstream.url];
    const env = { OPENAI_API_KEY: 'sk-test-never-printed' };

    const first = spawnSluice(args, env);
    await waitForLines(output, 5_000, first.child);
    first.child.kill('SIGINT');
    const stopped = await first.done;
    expect(stopped.code, stopped.stderr).toBe(130);
    expect(stopped.stderr).toContain('run the same command again to resume');
    const partial = readOutput(output);
    expect(partial.length).toBeGreaterThanOrEqual(5_000);
    expect(partial.length).toBeLessThan(10_000);
    expect(new Set(partial.map((line) => line.custom_id)).size).toBe(partial.length);

    const resumed = await runSluice(args, env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(new RegExp(`resumed +${partial.length.toLocaleString('en-US')} lines`));

    const lines = readOutput(output);
    expect(lines).toHaveLength(10_000);
    expect(new Set(lines.map((line) => line.custom_id))).toEqual(new Set(ids));
    // The first run's lines are kept as they were, the second run's follow.
    expect(lines.slice(0, partial.length)).toEqual(partial);
    expect(lines.map((line) => [line.custom_id, shapeProblem(line)]).filter(([, problem]) => problem !== undefined)).toEqual([]);
    const failed = lines.filter((line) => line.error !== null);
    expect(failed.length).toBeGreaterThan(0);
    expect(new Set(failed.map((line) => line.error?.code))).toContain('BAD_REQUEST');
    expect(lines.filter((line) => line.error === null).length).toBeGreaterThan(9_000);

    // The summary: a row per model, failures by code, the performance figures.
    expect(resumed.stdout).toMatch(/\| gpt-4\.1 \|/);
    expect(resumed.stdout).toMatch(/BAD_REQUEST \d+/);
    for (const label of ['total time', 'success rate', 'average latency', 'QPS', 'p99']) expect(resumed.stdout).toContain(label);
    expect(resumed.stderr).toMatch(/^progress: [\d,]+\/10,000 lines/m);
    for (const text of [stopped.stdout, stopped.stderr, resumed.stdout, resumed.stderr, readFileSync(output, 'utf8')]) {
      expect(text).not.toContain('sk-test-never-printed');
    }
  }, 120_000);

  it('reports malformed lines with their line numbers, skips them and sends the rest', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(
      input,
      [
        requestLine('a'),
        '{"custom_id": "b", "body": ', // 2: cut JSON
        '',
        JSON.stringify({ method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1', messages: [] } }), // 4: no custom_id
        JSON.stringify({ custom_id: 'e', method: 'POST', url: '/v1/embeddings', body: { model: 'x', input: 'y' } }), // 5: not chat
        requestLine('a'), // 6: duplicate
        requestLine('g'),
        JSON.stringify({ custom_id: 'h', method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1', messages: 'no' } }), // 8: bad body
        '',
      ].join('\n'),
    );
    const result = await runSluice(['batch', input, '-o', output, '--base-url', upstream.url, '--no-retry']);
    expect(result.code, result.stderr).toBe(0);
    const skipped = [...result.stderr.matchAll(/requests\.jsonl:(\d+): skipped: (.*)/g)].map((m) => [Number(m[1]), m[2]]);
    expect(skipped.map(([line]) => line)).toEqual([2, 4, 5, 6]);
    expect(skipped[1]?.[1]).toContain('custom_id');
    expect(skipped[2]?.[1]).toContain('/v1/embeddings');
    expect(skipped[3]?.[1]).toContain('repeats');
    const lines = readOutput(output);
    expect(lines.map((line) => line.custom_id).sort()).toEqual(['a', 'g', 'h']);
    // A body the pipeline refuses is that line's error, not a skipped line.
    expect(lines.find((line) => line.custom_id === 'h')?.error?.code).toBe('VALIDATION');
    expect(upstream.requests).toHaveLength(2);
    expect(result.stdout).toContain('malformed       4 input lines skipped');
  }, 30_000);
});

describe('sluice batch --cache', () => {
  it('sends a repeated deterministic request once, answers the repeats from the cache, and the ledger shows what they saved', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    const ledger = join(dir, 'spend.jsonl');
    const line = (id: string, content: string) =>
      JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1', temperature: 0, messages: [{ role: 'user', content }] } });
    writeFileSync(input, [line('s1', 'say same'), line('s2', 'say same'), line('other', 'say other'), line('s3', 'say same')].join('\n'));
    const result = await runSluice(['batch', input, '-o', output, '--base-url', upstream.url, '--no-retry', '--concurrency', '1', '--cache', '--ledger', ledger]);
    expect(result.code, result.stderr).toBe(0);
    expect(upstream.requests).toHaveLength(2);
    const lines = readOutput(output);
    const answer = (id: string) => (lines.find((l) => l.custom_id === id)?.response?.body as { choices: Array<{ message: { content: string } }> }).choices[0]?.message.content;
    expect(['s1', 's2', 's3'].map(answer)).toEqual(['Echo: say same', 'Echo: say same', 'Echo: say same']);
    expect(answer('other')).toBe('Echo: say other');

    const report = await runSluice(['cost', '--ledger', ledger, '--by', 'total']);
    expect(report.code, report.stderr).toBe(0);
    const cells = (row: string) => row.split('|').map((cell) => cell.trim()).filter(Boolean);
    const rows = report.stdout.split('\n').filter((row) => row.startsWith('|')).map(cells);
    expect(rows[0]?.slice(-2)).toEqual(['from cache', 'saved']);
    // Four requests, two of them answered from the cache, which cost nothing and saved what they would have cost.
    const total = rows.at(-1) ?? [];
    expect([total[0], total[1], total[6]]).toEqual(['total', '4', '2']);
    // Grouped by total, the one group is the total: it is not printed twice.
    expect(rows.filter((row) => row[0] === 'total')).toHaveLength(1);
    expect(Number(total[7]?.replace('$', ''))).toBeGreaterThan(0);
  }, 30_000);
});

describe('sluice batch: a ledger it cannot write', () => {
  it('fails before sending anything when the ledger cannot be opened, naming the file', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(input, [requestLine('a'), requestLine('b')].join('\n'));
    const ledger = join(dir, 'missing', 'spend.jsonl');
    const result = await runSluice(['batch', input, '-o', output, '--base-url', upstream.url, '--ledger', ledger]);
    // Before, the batch ran to the end with exit code 0, every cost record lost without a word.
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`ledger: the directory of ${ledger} does not exist`);
    expect(upstream.requests).toHaveLength(0);
  }, 30_000);

  // /dev/full takes the open and refuses every write with ENOSPC, as a full disk does mid-run.
  it.runIf(existsSync('/dev/full'))('warns once when the ledger stops taking records, and still writes every answer', async () => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    writeFileSync(input, [requestLine('a'), requestLine('b'), requestLine('c')].join('\n'));
    const result = await runSluice(['batch', input, '-o', output, '--base-url', upstream.url, '--ledger', '/dev/full']);
    expect(result.code, result.stderr).toBe(0);
    expect(readOutput(output)).toHaveLength(3);
    // Before, nothing was said: the run looked as if every cost record had been kept.
    expect(result.stderr.match(/warning: a settlement listener failed: ENOSPC/g)).toHaveLength(1);
    expect(result.stderr).toContain('sluice batch: 3 warning(s) in all');
  }, 30_000);
});

describe('sluice batch with deployments', () => {
  it('answers every line through the deployment that is up when another is down, priced at its model', async () => {
    upstream = await mockUpstream();
    const dead = await mockUpstream();
    const deadUrl = dead.url;
    await dead.close();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    const ledger = join(dir, 'spend.jsonl');
    const config = join(dir, 'batch.json');
    writeFileSync(input, Array.from({ length: 20 }, (_, i) => requestLine(`r${i}`)).join('\n'));
    writeFileSync(
      config,
      JSON.stringify({
        deployments: [
          { id: 'primary', baseUrl: deadUrl, model: 'gpt-4.1' },
          { id: 'backup', baseUrl: upstream.url, model: 'gpt-4.1-mini', group: 'gpt-4.1' },
        ],
        routing: { strategy: 'weighted' },
        breaker: { failures: 3 },
        retry: false,
        ledger,
      }),
    );
    const result = await runSluice(['batch', input, '-o', output, '--config', config]);
    expect(result.code, result.stderr).toBe(0);
    const lines = readOutput(output);
    expect(lines).toHaveLength(20);
    expect(lines.filter((line) => line.error !== null)).toEqual([]);
    expect(upstream.requests.every((request) => (request.body as { model: string }).model === 'gpt-4.1-mini')).toBe(true);
    const report = await runSluice(['cost', '--ledger', ledger, '--by', 'model']);
    expect(report.stdout).toContain('gpt-4.1-mini');

    // Deployments and a single endpoint together are refused, naming the field.
    const both = await runSluice(['batch', input, '-o', output, '--config', config, '--base-url', upstream.url]);
    expect(both.code).toBe(1);
    expect(both.stderr).toContain('batch.deployments');
  }, 30_000);
});

describe('sluice cost', () => {
  it("reproduces the original report's figures: gpt-4.1 at $124 a day, $3,720 a 30-day month", async () => {
    const result = await runSluice(['cost', '--models', 'gpt-4.1,claude-sonnet-4.5,gemini-2.5-flash,deepseek-v3.2']);
    expect(result.code, result.stderr).toBe(0);
    const rows = result.stdout.trim().split('\n').slice(2);
    expect(rows.map((row) => row.split('|')[1]?.trim())).toEqual(['deepseek-v3.2', 'gemini-2.5-flash', 'gpt-4.1', 'claude-sonnet-4.5']);
    expect(rows[2]).toMatch(/\| gpt-4\.1 +\| +10,000 \| 3,000 \| +800 \| +\$0\.0124 \| \$124\.00 \| +\$3,720\.00 \| +\$45,260\.00 \|/);
  }, 30_000);
});
