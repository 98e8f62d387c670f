// The real binary given input no well-behaved tool writes: each line is either skipped with a
// short reason naming its line, or answered exactly once, and nothing crashes or leaks the key.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type MockUpstream, mockUpstream, seededRandom } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSluice } from './test-spawn.js';

let dir: string;
let upstream: MockUpstream | undefined;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-cli-fuzz-'));
});
afterEach(async () => {
  await upstream?.close();
  upstream = undefined;
  await rm(dir, { recursive: true, force: true });
});

const key = 'sk-fuzz-never-printed-4f3e2d1c';
const line = (id: unknown, extra: Record<string, unknown> = {}, body: unknown = { model: 'gpt-4.1', messages: [{ role: 'user', content: `say ${String(id)}` }] }) =>
  JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body, ...extra });

/** One input file: good lines (ids `good-N`) among lines broken every way a file gets broken. */
function fuzzedInput(seed: number): { bytes: Buffer; good: string[] } {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const good: string[] = [];
  const parts: Buffer[] = [];
  const ending = () => pick(['\n', '\n', '\n', '\r\n', '\r', '\n\n']);
  for (let index = 0; index < 120; index++) {
    const id = `good-${seed}-${index}`;
    const valid = line(id);
    const kind = Math.floor(random() * 16);
    let text: string | Buffer;
    if (kind < 6) {
      good.push(id);
      text = kind === 0 ? `\uFEFF${valid}` : kind === 1 ? `  ${valid}\t` : valid;
    } else if (kind === 6) {
      // A few bytes flipped: whatever it turns into, it is skipped or answered.
      const bytes = Buffer.from(valid);
      for (let flips = 1 + Math.floor(random() * 3); flips > 0; flips--) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      text = bytes;
    } else if (kind === 7) text = valid.slice(0, Math.floor(random() * valid.length));
    else if (kind === 8) text = Buffer.from(Array.from({ length: 1 + Math.floor(random() * 200) }, () => Math.floor(random() * 256)).filter((byte) => byte !== 10 && byte !== 13));
    else if (kind === 9) text = line(pick([42, null, '', ['a'], { a: 1 }, true]));
    else if (kind === 10) text = line(`odd-${seed}-${index}`, { url: pick(['/v1/embeddings', 'x'.repeat(200_000), 7]) });
    else if (kind === 11) text = line(`odd-${seed}-${index}`, { method: pick(['GET', 'x'.repeat(200_000), null]) });
    else if (kind === 12) text = line(`odd-${seed}-${index}`, {}, pick([[], 'body', null, { model: 7 }, { model: 'gpt-4.1', messages: 'no' }, { model: 'gpt-4.1', stream: true, messages: [] }]));
    else if (kind === 13) text = line(`good-${seed}-0`); // a repeat of an earlier id (or the first of it)
    else if (kind === 14) text = line(`big-${seed}-${index}`, {}, { model: 'gpt-4.1', messages: [{ role: 'user', content: 'y'.repeat(3_000_000) }] });
    else text = pick(['null', '[]', '"text"', '{}', '{"custom_id":"\\ud800"}', '\u0000\u0000', '{"custom_id": "a", "body": {"model": "gpt-4.1"}}']);
    parts.push(typeof text === 'string' ? Buffer.from(text) : text, Buffer.from(ending()));
  }
  return { bytes: Buffer.concat(parts), good };
}

/** The non-blank lines of the file as the batch reads them: UTF-8 with replacement, CR, LF and CRLF breaks, a BOM dropped. */
function nonBlankLines(bytes: Buffer): number {
  return new TextDecoder()
    .decode(bytes)
    .split(/\r\n|\n|\r/)
    .filter((text) => (text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).trim() !== '').length;
}

interface OutputLine {
  id: string;
  custom_id: string;
  response: { status_code: number; body: { choices?: Array<{ message?: { content?: string } }> } } | null;
  error: { code: string; message: string } | null;
}

describe('sluice batch, fuzzed input', () => {
  it.each([1, 2, 3])('skips or answers each line once, with short reasons, no crash and no key (seed %i)', async (seed) => {
    upstream = await mockUpstream();
    const input = join(dir, 'requests.jsonl');
    const output = join(dir, 'results.jsonl');
    const { bytes, good } = fuzzedInput(seed);
    writeFileSync(input, bytes);
    const result = await runSluice(['batch', input, '-o', output, '--base-url', upstream.url, '--no-retry'], { OPENAI_API_KEY: key });
    expect(result.code, result.stderr.slice(0, 2_000)).toBe(0);
    for (const text of [result.stdout, result.stderr]) {
      expect(text).not.toContain(key);
      expect(text).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
    }
    const skipped = result.stderr.split('\n').filter((text) => text.includes(': skipped: '));
    for (const text of skipped) expect(text.length, text.slice(0, 300)).toBeLessThanOrEqual(600);
    const lines = readFileSync(output, 'utf8')
      .split('\n')
      .filter((text) => text !== '')
      .map((text) => JSON.parse(text) as OutputLine);
    // Every line is either skipped (said on stderr) or answered, once.
    expect(skipped.length + lines.length).toBe(nonBlankLines(bytes));
    const ids = lines.map((answer) => answer.custom_id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const answer of lines) expect(Object.keys(answer).sort()).toEqual(['custom_id', 'error', 'id', 'response']);
    // The good lines are all answered, each with its own answer.
    const byId = new Map(lines.map((answer) => [answer.custom_id, answer]));
    for (const id of good) expect(byId.get(id)?.response?.body.choices?.[0]?.message?.content, id).toBe(`Echo: say ${id}`);
  }, 60_000);
});
