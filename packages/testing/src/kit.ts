/**
 * `@sluice/testing/kit`: what a middleware author's tests need besides the
 * mock upstream: {@link testPipeline} (a pipeline against a mock, on a
 * manual clock and a purity-checking store), {@link recordEvents},
 * {@link manualClock}, {@link checkedStore}, and the small helpers
 * {@link chat}, {@link collect} and {@link drain}.
 *
 * It imports `@sluice/core` (a peer dependency); the package root does not,
 * so core's own tests can use the mock without a cycle.
 *
 * @module
 */
export { testPipeline, closeTestPipelines } from './pipeline-harness.js';
export type { TestPipeline, TestPipelineOptions, Attempt } from './pipeline-harness.js';
export { recordEvents } from './record-events.js';
export type { EventRecorder, RecordedEvent } from './record-events.js';
export { manualClock } from './manual-clock.js';
export type { ManualClock, RunOptions } from './manual-clock.js';
export { checkedStore } from './checked-store.js';
export type { CheckedStore, CheckedStoreOptions, TtlOption } from './checked-store.js';
export { chat } from './chat.js';
export { collect } from './collect.js';
export { drain } from './drain.js';
export type { Drained } from './drain.js';
