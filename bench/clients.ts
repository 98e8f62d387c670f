/**
 * The three clients the core benchmark compares, and the request they all
 * send. Each client reads every response to the end and looks at every
 * chunk the same way.
 *
 * @module
 */
import {
  type ChatCompletionChunk,
  type ChatCompletionRequest,
  type CompletionContext,
  createEmitter,
  createPipeline,
  memoryStore,
  openAICompatible,
  type Pipeline,
  systemClock,
} from '@sluice/core';
import OpenAI from 'openai';
import { Agent } from 'undici';
import type { Call } from './lib.js';

export const apiKey = 'sk-bench';
/** 20 words, streamed as 20 content chunks (plus role, finish and usage chunks). */
export const reply =
  'A pipeline of small middleware around one transport keeps every concern testable, replaceable and cheap when it is not used.';
export const contentChunks = 20;
const messages = [
  { role: 'system' as const, content: 'You are a terse assistant. Answer in one sentence.' },
  { role: 'user' as const, content: 'Why compose LLM resilience concerns as middleware around a single HTTP transport?' },
];
export const request = { model: 'gpt-4.1', messages, max_tokens: 64 } satisfies ChatCompletionRequest;
// Every client asks for usage, so the upstream sends every client the same
// events (the pipeline's transport asks for it anyway, and would only hide it).
export const streamRequest = { ...request, stream: true as const, stream_options: { include_usage: true } };

/** A client under test: one call of each kind, and a way to let go of its connections. */
export interface Client {
  name: string;
  complete: Call;
  stream: Call;
  close(): Promise<void>;
}

let sink = 0;

/** Characters of content consumed so far by every client together (a check that chunks were really read). */
export function consumed(): number {
  return sink;
}

/**
 * One call of each kind per client, checking every client reads the whole
 * reply as a stream (so no client is timed doing less work than the others).
 *
 * @throws when a client's stream carried less than the reply
 */
export async function checkClients(clients: readonly Client[]): Promise<void> {
  for (const client of clients) {
    await client.complete(() => {});
    let chunks = 0;
    const before = consumed();
    await client.stream(() => chunks++);
    const text = consumed() - before;
    if (chunks === 0 || text !== reply.length) {
      throw new Error(`${client.name}: expected the ${reply.length}-character reply as a stream, got ${text} characters`);
    }
  }
}

/** What every client does with a chunk, so each pays the same to look at it. */
function consume(chunk: { choices: ReadonlyArray<{ delta?: { content?: string | null } }> }): void {
  sink += chunk.choices[0]?.delta?.content?.length ?? 0;
}

/** The floor: undici's `request()` on a pool as large as the transport's, JSON and SSE parsed by hand. */
export function rawUndici(baseUrl: string): Client {
  const url = new URL(baseUrl);
  const origin = url.origin;
  const path = `${url.pathname}/chat/completions`;
  const agent = new Agent({ connections: 100 });
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${apiKey}` };
  return {
    name: 'undici',
    async complete() {
      const response = await agent.request({
        origin,
        path,
        method: 'POST',
        headers: { ...headers, accept: 'application/json' },
        body: JSON.stringify(request),
      });
      if (response.statusCode !== 200) throw new Error(`undici: status ${response.statusCode}`);
      const json = (await response.body.json()) as { choices?: unknown[] };
      if (!Array.isArray(json.choices)) throw new Error('undici: not a completion');
    },
    async stream(firstChunk) {
      const response = await agent.request({
        origin,
        path,
        method: 'POST',
        headers: { ...headers, accept: 'text/event-stream' },
        body: JSON.stringify(streamRequest),
      });
      if (response.statusCode !== 200) throw new Error(`undici: status ${response.statusCode}`);
      const decoder = new TextDecoder();
      let buffer = '';
      let done = false;
      for await (const bytes of response.body) {
        const events = (buffer + decoder.decode(bytes as Uint8Array, { stream: true })).split('\n\n');
        buffer = events.pop() ?? '';
        for (const event of events) {
          if (!event.startsWith('data: ')) continue;
          const data = event.slice(6);
          if (data === '[DONE]') {
            done = true;
            continue;
          }
          const chunk = JSON.parse(data) as ChatCompletionChunk;
          firstChunk();
          consume(chunk);
        }
      }
      if (!done) throw new Error('undici: stream ended without [DONE]');
    },
    close: () => agent.close(),
  };
}

/**
 * The openai SDK as users run it: its default fetch (or the one given,
 * under another name), no retries.
 */
export function openaiSdk(
  baseUrl: string,
  through?: { name: string; fetch: typeof globalThis.fetch; close(): Promise<void> },
): Client {
  const openai = new OpenAI({ baseURL: baseUrl, apiKey, maxRetries: 0, ...(through ? { fetch: through.fetch } : {}) });
  return {
    name: through?.name ?? 'openai',
    async complete() {
      await openai.chat.completions.create(request);
    },
    async stream(firstChunk) {
      const stream = await openai.chat.completions.create(streamRequest);
      for await (const chunk of stream) {
        firstChunk();
        consume(chunk);
      }
    },
    close: async () => through?.close(),
  };
}

/** The empty pipeline: defaults everywhere, no middleware. */
export function emptyPipeline(baseUrl: string): Client {
  return pipelineClient('pipeline', createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) }));
}

/** Any pipeline as a client under test, reading chunks like the others. */
export function pipelineClient(name: string, llm: Pipeline): Client {
  return {
    name,
    async complete() {
      await llm.complete(request);
    },
    async stream(firstChunk) {
      for await (const chunk of llm.stream(streamRequest)) {
        firstChunk();
        consume(chunk);
      }
    },
    close: () => llm.close(),
  };
}

/**
 * The transport without the pipeline: `openAICompatible(…).send(ctx)` on a
 * context built by hand (with the fresh AbortController a pipeline would
 * give it), to tell the transport's cost apart from the pipeline's.
 */
export function bareTransport(baseUrl: string): Client {
  const transport = openAICompatible({ baseUrl, apiKey });
  const events = createEmitter();
  const store = memoryStore();
  let sequence = 0;
  const context = (body: ChatCompletionRequest, stream: boolean): CompletionContext => ({
    id: `bench_${++sequence}`,
    request: body,
    stream,
    response: undefined,
    chunks: undefined,
    responseHeaders: undefined,
    usage: undefined,
    signal: new AbortController().signal,
    deadline: undefined,
    tags: {},
    state: {},
    events,
    clock: systemClock,
    store,
    transport: { name: transport.name, origin: transport.origin },
    startedAt: systemClock.now(),
    onSettled() {},
    remainingMs: () => Infinity,
  });
  return {
    name: 'transport',
    async complete() {
      const ctx = context(request, false);
      await transport.send(ctx);
      if (!ctx.response) throw new Error('transport: no response');
    },
    async stream(firstChunk) {
      const ctx = context(streamRequest, true);
      await transport.send(ctx);
      for await (const chunk of ctx.chunks ?? []) {
        firstChunk();
        consume(chunk);
      }
    },
    close: async () => {
      await transport.close?.();
    },
  };
}

/** Every client by name, in the order the tables list them. */
export const clientFactories = { undici: rawUndici, openai: openaiSdk, transport: bareTransport, pipeline: emptyPipeline } as const;
