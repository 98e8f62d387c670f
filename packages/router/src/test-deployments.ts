import { createPipeline, type Middleware, openAICompatible } from '@sluice/core';
import { type MockUpstream, type MockUpstreamOptions, mockUpstream } from '@sluice/testing';
import { checkedStore, manualClock, recordEvents } from '@sluice/testing/kit';
import type { Deployment } from './options.js';
import { router, type RouterMiddleware } from './router.js';
import type { RouterOptions } from './index.js';

/** The router tests' one clock: every mock and pipeline a test file makes runs on it. */
export const clock = manualClock();
/** Mocks closed after each test; push one a test starts itself. */
export const upstreams: MockUpstream[] = [];
const closers: Array<() => Promise<void>> = [];

/** Closes what the test made: pipelines (checking their stores stayed pure), then mocks. Use as `afterEach`. */
export async function closeDeployments(): Promise<void> {
  for (const close of closers.splice(0)) await clock.run(close());
  for (const upstream of upstreams.splice(0)) await upstream.close();
}

/** Starts one mock upstream per entry (on the test's clock) and a deployment for each. */
export async function start(specs: Array<Omit<Deployment, 'transport'> & { upstream?: MockUpstreamOptions }>) {
  const deployments: Deployment[] = [];
  const mocks: Record<string, MockUpstream> = {};
  for (const { upstream: options, ...deployment } of specs) {
    const upstream = await mockUpstream({ clock, ...options });
    upstreams.push(upstream);
    mocks[deployment.id] = upstream;
    deployments.push({ ...deployment, transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-test' }) });
  }
  return { deployments, mocks };
}

/** An outer pipeline ending in the router, on the test's clock and a purity-checking store. */
export function pipeline(options: RouterOptions, outer: Middleware[] = []) {
  const routed: RouterMiddleware = router(options);
  const store = checkedStore({ clock });
  const llm = createPipeline({ transport: routed.transport, clock, store });
  for (const middleware of outer) llm.use(middleware);
  llm.use(routed);
  closers.push(async () => {
    await llm.close({ graceMs: 0 });
    store.assertClean();
  });
  return { llm, events: recordEvents(llm.events) };
}
