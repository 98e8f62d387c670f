import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { mockUpstream } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from './main.js';
import { captureIo } from './test-io.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-ledger-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

const requestLine = (id: string, model: string) =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model, messages: [{ role: 'user', content: `say ${id}` }] } });

describe('the cost ledger file', () => {
  it('records every call of a batch and sums to the same spend in sluice cost --ledger', async () => {
    const upstream = await mockUpstream({ reply: { content: 'ok', usage: { prompt_tokens: 1_000, completion_tokens: 100 } } });
    try {
      const input = join(dir, 'requests.jsonl');
      const ledger = join(dir, 'spend.jsonl');
      writeFileSync(input, `${[requestLine('a', 'gpt-4.1'), requestLine('b', 'gpt-4.1'), requestLine('c', 'deepseek-v3.2')].join('\n')}\n`);
      const batch = captureIo();
      expect(await main(['batch', input, '-o', join(dir, 'out.jsonl'), '--base-url', upstream.url, '--ledger', ledger], batch)).toBe(0);
      expect(readFileSync(ledger, 'utf8').trim().split('\n')).toHaveLength(3);

      const io = captureIo();
      expect(await main(['cost', '--ledger', ledger], io)).toBe(0);
      // gpt-4.1: 2 × (1,000 × $2 + 100 × $8) / 1M = $0.0056.
      expect(io.out()).toMatch(/\| gpt-4\.1 +\| +2 \| +2,000 \| +0 \| +200 \| \$0\.0056 \|/);
      expect(io.out()).toMatch(/\| deepseek-v3\.2 +\| +1 \|/);
      expect(io.out()).toMatch(/\| total +\| +3 \| +3,000 \|/);
      // The batch's own summary shows the same spend.
      const total = /\| total +\| +3 \|.*\| (\$[\d.]+) \|/.exec(io.out())?.[1];
      expect(batch.out()).toContain(`cost            ${total}`);

      const byTag = captureIo();
      expect(await main(['cost', '--ledger', ledger, '--by', 'tag:custom_id'], byTag)).toBe(0);
      expect(byTag.out()).toMatch(/\| a +\| +1 \|/);
    } finally {
      await upstream.close();
    }
  });

  it('reports lines that are not cost records and sums the rest', async () => {
    const ledger = join(dir, 'spend.jsonl');
    const record = {
      id: '1', model: 'gpt-4.1', tags: {}, usd: 0.5, estimated: false, priced: true, at: Date.UTC(2026, 0, 1),
      buckets: { uncachedInput: { tokens: 10, usd: 0.1 }, cachedInput: { tokens: 0, usd: 0 }, output: { tokens: 5, usd: 0.4, reasoningTokens: 0 } },
    };
    writeFileSync(ledger, `${JSON.stringify(record)}\nnot json\n{"model": 1}\n${JSON.stringify({ ...record, usd: 0.25 })}\n`);
    const io = captureIo();
    expect(await main(['cost', '--ledger', ledger, '--by', 'day'], io)).toBe(0);
    expect(io.err()).toContain('spend.jsonl:2: skipped');
    expect(io.err()).toContain('spend.jsonl:3: skipped');
    expect(io.out()).toMatch(/\| 2026-01-01 +\| +2 \| +20 \| +0 \| +10 \| \$0\.7500 \|/);
  });

  it('refuses a grouping it does not know', async () => {
    const io = captureIo();
    writeFileSync(join(dir, 'spend.jsonl'), '');
    expect(await main(['cost', '--ledger', join(dir, 'spend.jsonl'), '--by', 'week'], io)).toBe(1);
    expect(io.err()).toContain('by: must be');
  });
});
