import { getEventListeners } from 'node:events';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ask, setup } from './test-helpers.js';

const warnings: Error[] = [];
const onWarning = (warning: Error) => warnings.push(warning);
afterEach(() => {
  process.off('warning', onWarning);
  warnings.length = 0;
});

describe("a caller's signal shared by many calls", () => {
  it('takes one listener however many calls follow it, none once they settled, and no MaxListenersExceededWarning', async () => {
    process.on('warning', onWarning);
    const { llm, upstream } = await setup();
    const controller = new AbortController();
    const calls = Array.from({ length: 50 }, (_, i) => llm.complete(ask(`q${i}`), { signal: controller.signal }));
    await upstream.waitForRequests(1);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    await Promise.all(calls);
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(0);
    // Warnings are emitted on a later tick.
    await new Promise((resolve) => setImmediate(resolve));
    // Before, Node warned "Possible EventTarget memory leak detected. 11 abort listeners added to [AbortSignal]".
    expect(warnings.filter((warning) => warning.name === 'MaxListenersExceededWarning')).toEqual([]);
  });

  it('aborts every call following it, each with an ABORTED error of its own carrying the reason', async () => {
    const { llm, upstream } = await setup();
    upstream.enqueue(...Array.from({ length: 20 }, () => ({ kind: 'hang' as const })));
    const controller = new AbortController();
    const calls = Array.from({ length: 20 }, (_, i) => llm.complete(ask(`q${i}`), { signal: controller.signal }).catch((error: unknown) => error));
    await upstream.waitForRequests(20);
    const reason = new Error('the user left');
    controller.abort(reason);
    const errors = (await Promise.all(calls)) as Array<{ code: string; cause: unknown }>;
    expect(errors.every((error) => error.code === 'ABORTED' && error.cause === reason)).toBe(true);
    expect(new Set(errors).size).toBe(20);
    // A call made with it afterwards fails at once, and one with a new signal still runs.
    await expect(llm.complete(ask(), { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
    await expect(llm.complete(ask(), { signal: new AbortController().signal })).resolves.toMatchObject({ object: 'chat.completion' });
  });

  it('keeps following for the calls still running when others settle', async () => {
    const { llm, upstream } = await setup();
    upstream.enqueue({ kind: 'ok' }, { kind: 'hang' }, { kind: 'ok' }, { kind: 'hang' });
    const controller = new AbortController();
    let answered = 0;
    const calls = Array.from({ length: 4 }, (_, i) =>
      llm.complete(ask(`q${i}`), { signal: controller.signal }).then(
        () => (answered++, 'answered'),
        (error: { code: string }) => error.code,
      ),
    );
    await upstream.waitForRequests(4);
    // Two answered; the listener stays for the two that hang.
    await vi.waitFor(() => expect(answered).toBe(2));
    expect(getEventListeners(controller.signal, 'abort')).toHaveLength(1);
    controller.abort();
    expect((await Promise.all(calls)).sort()).toEqual(['ABORTED', 'ABORTED', 'answered', 'answered']);
  });
});
