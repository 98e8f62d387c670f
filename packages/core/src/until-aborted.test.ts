import { afterEach, describe, expect, it, vi } from 'vitest';
import { untilAborted } from './call.js';
import { setup, ask } from './test-helpers.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('untilAborted', () => {
  it("ends a wait on a promise that never settles at the call's deadline (fake time)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
    const { llm, upstream } = await setup();
    const waited = llm.use(async (ctx, next) => {
      await untilAborted(ctx, new Promise<never>(() => {}));
      await next();
    });
    const settled = expect(waited.complete(ask(), { timeoutMs: 1_000 })).rejects.toMatchObject({ code: 'DEADLINE_EXCEEDED' });
    await vi.advanceTimersByTimeAsync(1_000);
    await settled;
    expect(upstream.requests).toHaveLength(0);
  });

  it('hands on the value or the rejection, and takes a value that is not a promise as it is', async () => {
    const { llm } = await setup();
    const seen: unknown[] = [];
    const failure = new Error('summariser down');
    await llm
      .use(async (ctx, next) => {
        seen.push(await untilAborted(ctx, Promise.resolve('answer')));
        seen.push(await untilAborted(ctx, 'plain'));
        seen.push(await untilAborted(ctx, Promise.reject(failure)).catch((error: unknown) => error));
        await next();
      })
      .complete(ask());
    expect(seen).toEqual(['answer', 'plain', failure]);
  });

  it('rejects at once for a call aborted already, and leaves the promise with no unhandled rejection', async () => {
    const { llm } = await setup();
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      const controller = new AbortController();
      let reject: (error: unknown) => void = () => {};
      const left = new Promise<never>((_resolve, rejectLeft) => (reject = rejectLeft));
      const call = llm
        .use(async (ctx, next) => {
          controller.abort();
          await untilAborted(ctx, left);
          await next();
        })
        .complete(ask(), { signal: controller.signal });
      await expect(call).rejects.toMatchObject({ code: 'ABORTED' });
      reject(new Error('late'));
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
