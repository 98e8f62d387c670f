// A real child process, because what is under test is whether Node keeps
// running: a call waiting on a retry's backoff must hold the process open
// until it has its answer, so no timer a call waits on may be unref'd.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mockUpstream } from '@sluice/testing';
import { expect, it } from 'vitest';

const run = promisify(execFile);
const packagesDir = fileURLToPath(new URL('../..', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));

const script = `
import { createPipeline, openAICompatible } from '@sluice/core';
import { constantBackoff, retry } from '@sluice/retry';

const llm = createPipeline({ transport: openAICompatible({ baseUrl: process.argv[2], apiKey: 'sk-test' }) })
  .use(retry({ backoff: constantBackoff(200) }));
const reply = await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'still here' }] });
console.log(reply.choices[0]?.message.content);
`;

it('keeps a one-shot script alive while its call waits on a backoff, and exits 0 with the answer', async () => {
  const upstream = await mockUpstream();
  const dir = await mkdtemp(join(tmpdir(), 'sluice-retry-'));
  try {
    upstream.enqueue({ kind: 'status', status: 503 });
    // The script finds the workspace's own core and retry, run from source.
    await mkdir(join(dir, 'node_modules', '@sluice'), { recursive: true });
    for (const name of ['core', 'retry']) await symlink(join(packagesDir, name), join(dir, 'node_modules', '@sluice', name), 'dir');
    await writeFile(join(dir, 'one-shot.mts'), script);

    const args = ['--conditions=@sluice/source', '--import', 'tsx', join(dir, 'one-shot.mts'), upstream.url];
    // A failed run rejects with the exit code and the output; keep them to show what happened.
    const child: { code?: number; stdout: string; stderr: string } = await run(process.execPath, args, { cwd: repoRoot, timeout: 30_000 }).catch(
      (error: { code?: number; stdout: string; stderr: string }) => error,
    );

    // Exit code 13 is Node giving up on a top-level await whose timer was unref'd.
    expect({ code: child.code ?? 0, stdout: child.stdout.trim() }, child.stderr).toEqual({ code: 0, stdout: 'Echo: still here' });
    expect(upstream.requests).toHaveLength(2);
  } finally {
    await upstream.close();
    await rm(dir, { recursive: true, force: true });
  }
}, 40_000);
