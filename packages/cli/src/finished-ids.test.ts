import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { finishedIds } from './finished-ids.js';
import { countLines, readLines } from './read-lines.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-ids-'));
});
afterEach(() => rm(dir, { recursive: true, force: true }));

describe('finishedIds', () => {
  it('holds nothing for a file that does not exist yet', async () => {
    expect(await finishedIds(join(dir, 'none.jsonl'))).toEqual({ ids: new Set(), droppedBytes: 0 });
  });

  it('collects the custom_ids of an output file', async () => {
    const path = join(dir, 'out.jsonl');
    writeFileSync(path, '{"custom_id":"a"}\n{"custom_id":"b"}\n');
    expect(await finishedIds(path)).toEqual({ ids: new Set(['a', 'b']), droppedBytes: 0 });
  });

  it('removes a last line cut short by a kill, so the next line starts on its own', async () => {
    const path = join(dir, 'out.jsonl');
    writeFileSync(path, '{"custom_id":"a"}\n{"custom_id":"b"}\n{"custom_id":"c","resp');
    expect(await finishedIds(path)).toEqual({ ids: new Set(['a', 'b']), droppedBytes: '{"custom_id":"c","resp'.length });
    expect(readFileSync(path, 'utf8')).toBe('{"custom_id":"a"}\n{"custom_id":"b"}\n');
  });

  it('empties a file holding only a cut line', async () => {
    const path = join(dir, 'out.jsonl');
    writeFileSync(path, '{"custom_id":"a"');
    expect((await finishedIds(path)).ids.size).toBe(0);
    expect(readFileSync(path, 'utf8')).toBe('');
  });
});

describe('readLines', () => {
  it('numbers lines as an editor does, skipping blank ones, with CRLF and a byte-order mark', async () => {
    const path = join(dir, 'in.jsonl');
    writeFileSync(path, '\uFEFF{"a":1}\r\n\r\n{"b":2}\n   \n{"c":3}');
    const lines = [];
    for await (const line of readLines(path)) lines.push(line);
    expect(lines).toEqual([
      { line: 1, text: '{"a":1}' },
      { line: 3, text: '{"b":2}' },
      { line: 5, text: '{"c":3}' },
    ]);
    expect(await countLines(path)).toBe(5);
  });

  it('drops the byte-order mark of files joined with cat, each with its own', async () => {
    const path = join(dir, 'joined.jsonl');
    writeFileSync(path, '\uFEFF{"a":1}\n\uFEFF{"b":2}\r\n');
    const lines = [];
    for await (const line of readLines(path)) lines.push(line);
    // Before, the second line was skipped as "not JSON".
    expect(lines).toEqual([
      { line: 1, text: '{"a":1}' },
      { line: 2, text: '{"b":2}' },
    ]);
  });
});
