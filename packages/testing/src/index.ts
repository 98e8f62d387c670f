/**
 * `@sluice/testing`: a real mock OpenAI-compatible upstream for tests and
 * benchmarks. {@link mockUpstream} starts an HTTP server on 127.0.0.1 that
 * answers `POST /v1/chat/completions` (JSON and SSE) and injects scripted or
 * seeded faults: error statuses, HTML pages, malformed bodies, resets, cut
 * streams, SSE errors, delays and hangs.
 *
 * @module
 */
export { mockUpstream } from './mock-upstream.js';
export type { MockUpstream, RecordedRequest } from './mock-upstream.js';
export type { MockUpstreamOptions } from './mock-upstream-options.js';
export type { Fault, FaultRule } from './fault.js';
export type { MockReply, MockToolCall, MockUsage } from './mock-reply.js';
export type { ChatRequestBody } from './chat-request-body.js';
export type { MockClock } from './mock-clock.js';
export { openAIError } from './openai-error.js';
export type { OpenAIErrorBody } from './openai-error.js';
export { seededRandom } from './seeded-random.js';
