// The quick example of packages/testing/README.md, run as a test in CI.
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createPipeline, openAICompatible } from '@sluice/core';
import { mockUpstream, type MockUpstream } from '@sluice/testing';

let upstream: MockUpstream;
beforeEach(async () => {
  upstream = await mockUpstream({ seed: 42 });
});
afterEach(() => upstream.close());

it('surfaces a 503 as a retryable server error', async () => {
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) });
  upstream.enqueue({ kind: 'status', status: 503 });

  await expect(llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hi' }] }))
    .rejects.toMatchObject({ code: 'SERVER_ERROR', retryable: true });
  expect(upstream.requests).toHaveLength(1);
  expect(upstream.requests[0]?.headers['authorization']).toBe('Bearer sk-test');
});
