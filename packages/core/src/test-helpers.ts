import type { MockUpstream, MockUpstreamOptions } from '@sluice/testing';
import { closeTestPipelines, collect, testPipeline } from '@sluice/testing/kit';
import { systemClock } from './clock.js';
import { memoryStore } from './store.js';
import { afterEach } from 'vitest';
import type { OpenAICompatibleOptions } from './open-ai-compatible.js';
import type { Pipeline } from './pipeline.js';
import type { ChatCompletionRequest } from './schemas.js';

export const apiKey = 'sk-test-9f8e7d6c5b4a';

export const ask = (content = 'Hello there', model = 'gpt-4.1'): ChatCompletionRequest => ({
  model,
  messages: [{ role: 'user', content }],
});

afterEach(closeTestPipelines);

/** A mock upstream and a pipeline pointed at it, on real time, both closed after the test. */
export async function setup(
  options: { upstream?: MockUpstreamOptions; transport?: Partial<OpenAICompatibleOptions> } = {},
): Promise<{ upstream: MockUpstream; llm: Pipeline }> {
  const { upstream, llm } = await testPipeline({
    clock: systemClock,
    store: memoryStore(),
    ...(options.upstream ? { upstream: options.upstream } : {}),
    transport: { apiKey, ...options.transport },
  });
  return { upstream, llm };
}

export { collect };

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
