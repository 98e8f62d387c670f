import { type ChatCompletionRequest, createPipeline, type Middleware, openAICompatible, type Pipeline, type SluiceEvents } from '@sluice/core';
import { mockUpstream, type MockUpstream, type MockUpstreamOptions } from '@sluice/testing';
import { vi } from 'vitest';
import { rateLimit } from './rate-limit.js';
import type { RateLimitOptions } from './options.js';

/** Fake time starts here in every test. */
export const T0 = 1_700_000_000_000;

const open: Array<{ close(): Promise<void> }> = [];

/** Closes every pipeline and upstream a test opened, and restores real timers. */
export async function closeAll(): Promise<void> {
  vi.useRealTimers();
  await Promise.all(open.splice(0).map((item) => item.close()));
}

/** A request whose last user message is `text` (the mock echoes it back). */
export const ask = (text: string, extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: 'gpt-4.1',
  messages: [{ role: 'user', content: text }],
  ...extra,
});

/** The last user message of what the upstream received, in arrival order. */
export const arrivals = (upstream: MockUpstream): string[] =>
  upstream.requests.map((request) => {
    const messages = (request.body as ChatCompletionRequest).messages;
    return String(messages[messages.length - 1]?.content);
  });

export interface Harness {
  upstream: MockUpstream;
  llm: Pipeline;
  /** Fake-clock offsets (from T0) at which requests passed the limiter, with their text, in order. */
  admitted: Array<{ at: number; text: string }>;
  /** Every limiter event, in order. */
  events: Array<{ name: 'limit-wait' | 'limit-reject' | 'limit-pause' } & Record<string, unknown>>;
  /** Lets real I/O run (no timers) until `condition` holds. */
  until(condition: () => boolean): Promise<void>;
}

/**
 * A pipeline with `rateLimit(options)` against a fresh mockUpstream, on fake
 * time starting at {@link T0}. Transport timeouts are out of the way, since
 * tests jump the fake clock across minutes while sockets work in real time.
 */
export async function harness(
  options: RateLimitOptions,
  mock: MockUpstreamOptions = {},
  outer: Middleware[] = [],
): Promise<Harness> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  vi.setSystemTime(T0);
  const upstream = await mockUpstream(mock);
  open.push(upstream);
  const far = 1e9;
  const llm = createPipeline({
    transport: openAICompatible({
      baseUrl: upstream.url,
      apiKey: 'sk-test',
      connectTimeoutMs: far,
      firstByteTimeoutMs: far,
      attemptTimeoutMs: far,
      idleTimeoutMs: far,
    }),
  });
  open.push(llm);
  const admitted: Harness['admitted'] = [];
  const events: Harness['events'] = [];
  for (const name of ['limit-wait', 'limit-reject', 'limit-pause'] as const) {
    llm.events.on(name, (payload: SluiceEvents[typeof name]) => events.push({ name, ...payload }));
  }
  for (const middleware of outer) llm.use(middleware);
  llm.use(rateLimit(options)).use(async function observe(ctx, next) {
    const messages = ctx.request.messages;
    admitted.push({ at: ctx.clock.now() - T0, text: String(messages[messages.length - 1]?.content) });
    await next();
  });
  const until = async (condition: () => boolean) => {
    for (let turn = 0; !condition(); turn++) {
      if (turn > 20_000) throw new Error('until: the condition never held');
      await new Promise((resolve) => setImmediate(resolve));
    }
  };
  return { upstream, llm, admitted, events, until };
}

/** Remembers how a promise ended, without an unhandled rejection in the meantime. */
export function track<T>(promise: Promise<T>): { promise: Promise<T>; state: () => 'pending' | 'resolved' | 'rejected' } {
  let state: 'pending' | 'resolved' | 'rejected' = 'pending';
  promise.then(
    () => (state = 'resolved'),
    () => (state = 'rejected'),
  );
  return { promise, state: () => state };
}
