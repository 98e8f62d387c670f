// Test helpers (not published: `files` excludes src/**/test-*.ts).
import {
  type ChatCompletionRequest,
  createPipeline,
  memoryStore,
  type Middleware,
  openAICompatible,
  type Pipeline,
  type SluiceEvents,
  type Store,
} from '@sluice/core';
import { type MockUpstream, type MockUpstreamOptions, mockUpstream } from '@sluice/testing';
import { expect } from 'vitest';
import { type BreakerMiddleware, breaker } from './breaker.js';
import type { BreakerOptions } from './options.js';

type BreakerEventName = 'circuit-open' | 'circuit-half-open' | 'circuit-close';
export type SeenEvent = { [K in BreakerEventName]: { name: K } & SluiceEvents[K] }[BreakerEventName];

export interface Harness {
  upstream: MockUpstream;
  llm: Pipeline;
  circuit: BreakerMiddleware;
  events: SeenEvent[];
  /** The default circuit key of `model` on this upstream. */
  key(model?: string): string;
  close(): Promise<void>;
}

/**
 * A mock upstream and a pipeline of `outer` middleware (if any), then
 * `breaker(options)` (or the `circuit` given), then `inner` (if any).
 */
export async function harness(
  options: BreakerOptions = {},
  extra: { upstream?: MockUpstreamOptions; store?: Store; outer?: Middleware; circuit?: BreakerMiddleware; inner?: Middleware } = {},
): Promise<Harness> {
  const upstream = await mockUpstream(extra.upstream);
  const circuit = extra.circuit ?? breaker(options);
  const llm = createPipeline({
    transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }),
    ...(extra.store ? { store: extra.store } : {}),
  });
  if (extra.outer) llm.use(extra.outer);
  llm.use(circuit);
  if (extra.inner) llm.use(extra.inner);
  const events: SeenEvent[] = [];
  let closing: Promise<void> | undefined;
  llm.events.on('circuit-open', (e) => events.push({ name: 'circuit-open', ...e }));
  llm.events.on('circuit-half-open', (e) => events.push({ name: 'circuit-half-open', ...e }));
  llm.events.on('circuit-close', (e) => events.push({ name: 'circuit-close', ...e }));
  return {
    upstream,
    llm,
    circuit,
    events,
    key: (model = 'gpt-4.1') => `${upstream.url}|${model}`,
    close() {
      // Idempotent: core's Pipeline.close() throws when called twice.
      closing ??= llm.close().then(() => upstream.close());
      return closing;
    },
  };
}

/** A minimal request for `model`. */
export function ask(model = 'gpt-4.1'): ChatCompletionRequest {
  return { model, messages: [{ role: 'user', content: 'Hello there' }] };
}

/** Sends `count` calls that each get a 503, one after another, and checks each failed with it. */
export async function failTimes(h: Harness, count: number, model = 'gpt-4.1'): Promise<void> {
  for (let i = 0; i < count; i++) {
    h.upstream.enqueue({ kind: 'status', status: 503 });
    await expect(h.llm.complete(ask(model))).rejects.toMatchObject({ code: 'SERVER_ERROR' });
  }
}

/** Reads a stream to its end, returning the error it ended with, if any. */
export async function drain(stream: AsyncIterable<unknown>): Promise<unknown> {
  try {
    for await (const _ of stream) {
      // read on
    }
    return undefined;
  } catch (error) {
    return error;
  }
}

/**
 * A store that behaves like a distributed one: it keeps values only as
 * JSON text, and runs every `update` function twice (as a store retrying
 * an optimistic transaction would), so impure or non-JSON state breaks.
 */
export function jsonStore(): Store & { calls: number; raw(key: string): string | undefined } {
  const inner = memoryStore();
  const texts = new Map<string, string>();
  const store = {
    calls: 0,
    raw: (key: string) => texts.get(key),
    async get<T>(key: string) {
      store.calls++;
      const text = await inner.get<string>(key);
      return text === undefined ? undefined : (JSON.parse(text) as T);
    },
    async set<T>(key: string, value: T, ttlMs?: number) {
      store.calls++;
      texts.set(key, JSON.stringify(value));
      await inner.set(key, JSON.stringify(value), ttlMs);
    },
    async update<T>(key: string, update: (current: T | undefined) => T, ttlMs?: number) {
      store.calls++;
      const read = () => {
        const text = texts.get(key);
        return text === undefined ? undefined : (JSON.parse(text) as T);
      };
      update(read()); // a first try whose result is thrown away
      const next = JSON.stringify(update(read()));
      texts.set(key, next);
      await inner.set(key, next, ttlMs);
      return JSON.parse(next) as T;
    },
    async delete(key: string) {
      store.calls++;
      texts.delete(key);
      await inner.delete(key);
    },
  };
  return store;
}
