import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const packageDir = fileURLToPath(new URL('..', import.meta.url));

/** Runs a one-shot ES module the way a user's script runs: its own process, exiting when nothing keeps it alive. */
function runScript(code: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', '--conditions=@sluice/source', '--input-type=module', '-e', code],
      { cwd: packageDir, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe('process lifetime', () => {
  // Every timer used to be unref'd, so a script whose only pending work was
  // a backoff or a limit wait exited in the middle of the call, silently.
  it('keeps a one-shot script alive while a call waits on the clock', async () => {
    const result = await runScript(`
      import { createPipeline, sleep } from '@sluice/core';
      const llm = createPipeline({
        transport: {
          name: 'answering', origin: 'local',
          async send(ctx) {
            ctx.response = { id: 'x', object: 'chat.completion', created: 0, model: ctx.request.model,
              choices: [{ index: 0, finish_reason: 'stop', message: { role: 'assistant', content: 'after the wait' } }] };
          },
        },
      }).use(async function backoff(ctx, next) {
        await sleep(200, { clock: ctx.clock });
        await next();
      });
      const reply = await llm.complete({ model: 'm', messages: [{ role: 'user', content: 'hi' }] });
      console.log(reply.choices[0].message.content);
    `);
    expect(result).toMatchObject({ code: 0, stdout: 'after the wait\n' });
  });
});
