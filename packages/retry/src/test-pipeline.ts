// Test helpers (not published: `files` excludes src/**/test-*.ts).
import { type ChatCompletionRequest, createPipeline, type Middleware, openAICompatible, type Pipeline, type SluiceEvents } from '@sluice/core';
import { mockUpstream, type MockUpstream, type MockUpstreamOptions } from '@sluice/testing';
import { vi } from 'vitest';

const open: Array<{ close(): Promise<void> }> = [];

/** Closes every upstream and pipeline a test started; call it in afterEach. */
export async function closeAll(): Promise<void> {
  await Promise.all(open.splice(0).map((thing) => thing.close()));
}

/**
 * A mock upstream and a pipeline pointed at it running `middleware`, with
 * a counter inside them that sees every attempt reach the transport.
 */
export async function start(
  middleware: Middleware[],
  options: MockUpstreamOptions = {},
): Promise<{ upstream: MockUpstream; llm: Pipeline; sent: () => number; outcomes: string[] }> {
  const upstream = await mockUpstream(options);
  open.push(upstream);
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) });
  open.push(llm);
  for (const step of middleware) llm.use(step);
  let count = 0;
  const outcomes: string[] = [];
  llm.use(async function countAttempts(ctx, next) {
    count++;
    await next();
    // Bound to this attempt's response: how it ended (a stream: read, cut or cancelled).
    ctx.onSettled((settlement) => void outcomes.push(settlement.outcome));
  });
  return { upstream, llm, sent: () => count, outcomes };
}

/** The next `name` event's payload. */
export function nextEvent<K extends keyof SluiceEvents>(llm: Pipeline, name: K): Promise<SluiceEvents[K]> {
  return new Promise((resolve) => {
    llm.events.once(name, ((payload: SluiceEvents[K]) => resolve(payload)) as never);
  });
}

/** Every `name` event's payload, as they come. */
export function collect<K extends keyof SluiceEvents>(llm: Pipeline, name: K): Array<SluiceEvents[K]> {
  const seen: Array<SluiceEvents[K]> = [];
  llm.events.on(name, ((payload: SluiceEvents[K]) => void seen.push(payload)) as never);
  return seen;
}

/** Lets real I/O (sockets) make progress without moving fake time. */
export async function flushIo(turns = 5): Promise<void> {
  for (let turn = 0; turn < turns; turn++) await new Promise((resolve) => setImmediate(resolve));
}

/** Advances fake time in `stepMs` steps, letting I/O run between steps, until `promise` settles. */
export async function drive<T>(promise: Promise<T>, stepMs = 50, maxMs = 120_000): Promise<T> {
  let settled = false;
  promise.then(
    () => (settled = true),
    () => (settled = true),
  );
  for (let elapsed = 0; !settled && elapsed < maxMs; elapsed += stepMs) {
    await flushIo();
    await vi.advanceTimersByTimeAsync(stepMs);
  }
  return promise;
}

/** A minimal request. */
export const chat = (content = 'Hello'): ChatCompletionRequest => ({
  model: 'gpt-4.1',
  messages: [{ role: 'user', content }],
});
