// `sluice batch` on a terminal: the live bar, in process on a stream that says it is a TTY, and in a real pseudo-terminal.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { type MockUpstream, mockUpstream } from '@sluice/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { main } from './main.js';

let dir: string;
let upstream: MockUpstream;
let input: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'sluice-tty-'));
  upstream = await mockUpstream({ reply: 'fine thanks' });
  input = join(dir, 'requests.jsonl');
  const line = (id: string) => JSON.stringify({ custom_id: id, method: 'POST', url: '/v1/chat/completions', body: { model: 'gpt-4.1', messages: [{ role: 'user', content: `say ${id}` }] } });
  writeFileSync(input, `${['a', 'b', 'c', 'd', 'e'].map(line).join('\n')}\n`);
  // One request refused for good: the bar must count it as failed.
  upstream.enqueue({ kind: 'status', status: 400 });
});
afterEach(async () => {
  await upstream.close();
  await rm(dir, { recursive: true, force: true });
});

// CSI sequences (cursor moves, line clears, cursor show/hide) and the save/restore pair cli-progress writes.
const ansi = /\x1B\[[0-9;?]*[A-Za-z]|\x1B[78]/g;
/** The bar's final state: every field, with figures that must not be zero for a run that spent tokens and money. */
const finalBar = /100% \| 5\/5 \| 1 failed \| (\d+\.\d) req\/s \| ([\d,]+) tokens \| \$(\d+\.\d{4}) \| ETA 0s/;

function expectBarAndSummary(stderr: string, stdout: string): void {
  const screen = stderr.replace(ansi, '');
  const last = [...screen.matchAll(new RegExp(finalBar, 'g'))].at(-1);
  expect(last, screen).toBeDefined();
  const [, rate, tokens, usd] = last as RegExpMatchArray;
  expect(Number(rate)).toBeGreaterThan(0);
  expect(Number(tokens?.replace(/,/g, ''))).toBeGreaterThan(0);
  expect(Number(usd)).toBeGreaterThan(0);
  // The terminal branch: a redrawn bar, not the plain lines a log gets; the cursor is shown again at the end.
  expect(screen).not.toContain('progress:');
  expect(stderr).toContain('\x1B[?25l');
  expect(stderr.lastIndexOf('\x1B[?25h')).toBeGreaterThan(stderr.lastIndexOf('\x1B[?25l'));
  // The summary goes to stdout, whole, with no terminal control in it.
  expect(stdout).not.toMatch(ansi);
  expect(stdout).toMatch(/\| gpt-4\.1 \|\s+5 \|\s+1 \|/);
  expect(stdout).toContain('requests        5 sent, 4 succeeded, 1 failed');
  expect(stdout).toContain('success rate    80.00%');
}

describe('sluice batch on a terminal', () => {
  it('draws the bar with done, failed, requests/s, tokens, spend and ETA, and keeps the summary intact (in process)', async () => {
    let err = '';
    let out = '';
    const terminal = Object.assign(
      new Writable({
        write(chunk: Buffer | string, _encoding, done) {
          err += String(chunk);
          done();
        },
      }),
      { isTTY: true, columns: 200 },
    );
    const stdout = new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        out += String(chunk);
        done();
      },
    });
    const code = await main(['batch', input, '-o', join(dir, 'out.jsonl'), '--base-url', upstream.url, '--no-retry', '--concurrency', '2'], { stdout, stderr: terminal, env: {} });
    expect(code, err).toBe(0);
    expectBarAndSummary(err, out);
    expect(readFileSync(join(dir, 'out.jsonl'), 'utf8').trim().split('\n')).toHaveLength(5);
  });

  const hasScript = (() => {
    try {
      execFileSync('script', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  // util-linux's `script` gives the real binary a pseudo-terminal: no native dependency.
  it.skipIf(!hasScript)('draws the same bar in a real pseudo-terminal (script from util-linux)', async () => {
    const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
    const bin = fileURLToPath(new URL('./bin.ts', import.meta.url));
    const outFile = join(dir, 'stdout.txt');
    const quote = (text: string) => `'${text.replace(/'/g, `'\\''`)}'`;
    // stderr stays on the terminal (the bar); stdout goes to a file, as `sluice batch … > summary.txt` would.
    const command = [process.execPath, '--import', 'tsx', '--conditions=@sluice/source', bin, 'batch', input, '-o', join(dir, 'out.jsonl'), '--base-url', upstream.url, '--no-retry', '--concurrency', '2']
      .map(quote)
      .join(' ');
    const child = spawn('script', ['-qfec', `stty cols 200; ${command} > ${quote(outFile)}`, '/dev/null'], {
      cwd: repoRoot,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TERM: 'xterm' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let terminal = '';
    child.stdout.setEncoding('utf8').on('data', (text: string) => (terminal += text));
    child.stderr.setEncoding('utf8').on('data', (text: string) => (terminal += text));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', resolve);
    });
    expect(code, terminal).toBe(0);
    expectBarAndSummary(terminal.replace(/\r/g, ''), readFileSync(outFile, 'utf8'));
  });
});
