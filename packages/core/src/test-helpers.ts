import { mockUpstream, type MockUpstream, type MockUpstreamOptions } from '@sluice/testing';
import { afterEach } from 'vitest';
import { openAICompatible, type OpenAICompatibleOptions } from './open-ai-compatible.js';
import { createPipeline, type Pipeline } from './pipeline.js';
import type { ChatCompletionRequest } from './schemas.js';

export const apiKey = 'sk-test-9f8e7d6c5b4a';

export const ask = (content = 'Hello there', model = 'gpt-4.1'): ChatCompletionRequest => ({
  model,
  messages: [{ role: 'user', content }],
});

const open: Array<{ close(): Promise<void> }> = [];

afterEach(async () => {
  await Promise.all(open.splice(0).map((item) => item.close()));
});

/** A mock upstream and a pipeline pointed at it, both closed after the test. */
export async function setup(
  options: { upstream?: MockUpstreamOptions; transport?: Partial<OpenAICompatibleOptions> } = {},
): Promise<{ upstream: MockUpstream; llm: Pipeline }> {
  const upstream = await mockUpstream(options.upstream);
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey, ...options.transport }) });
  open.push(llm, upstream);
  return { upstream, llm };
}

export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

/** Every upstream status and the code and retryability it maps to. */
export const statusCodes: Array<[status: number, code: string, retryable: boolean]> = [
  [400, 'BAD_REQUEST', false],
  [401, 'AUTHENTICATION', false],
  [403, 'PERMISSION_DENIED', false],
  [404, 'NOT_FOUND', false],
  [408, 'REQUEST_TIMEOUT', true],
  [409, 'CONFLICT', true],
  [413, 'PAYLOAD_TOO_LARGE', false],
  [422, 'UNPROCESSABLE_ENTITY', false],
  [429, 'RATE_LIMITED', true],
  [500, 'SERVER_ERROR', true],
  [503, 'SERVER_ERROR', true],
];
