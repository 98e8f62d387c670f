// The first example of "Testing your own middleware" in packages/testing/README.md, run as a test in CI.
import { afterEach, expect, it } from 'vitest';
import { sleep, type Middleware } from '@sluice/core';
import { chat, closeTestPipelines, testPipeline } from '@sluice/testing/kit';

// The middleware under test: after a 503, wait a second, then ask a cheaper model.
const fallback = (model: string): Middleware =>
  async function fallback(ctx, next) {
    try {
      await next();
    } catch (error: unknown) {
      if ((error as { status?: number }).status !== 503) throw error;
      await sleep(1_000, { clock: ctx.clock, signal: ctx.signal });
      ctx.request = { ...ctx.request, model };
      await next();
    }
  };

afterEach(closeTestPipelines);

it('answers from the fallback model a second after a 503', async () => {
  const { llm, upstream, clock, attempts } = await testPipeline({
    middleware: fallback('deepseek-v3.2'),
    upstream: { reply: (body) => `answered by ${body.model}` },
  });
  upstream.enqueue({ kind: 'status', status: 503 });

  const reply = await clock.run(llm.complete(chat('Hi')));

  expect(reply.choices[0]?.message.content).toBe('answered by deepseek-v3.2');
  expect(attempts.map((attempt) => [attempt.request.model, attempt.at - clock.start])).toEqual([
    ['gpt-4.1', 0],
    ['deepseek-v3.2', 1_000],
  ]);
});
