/**
 * @module @sluice/otel
 *
 * OpenTelemetry for sluice pipelines, through `@opentelemetry/api` only (a
 * peer dependency; bring your own SDK): `otel()` records every call as a
 * GenAI `chat {model}` span with the conventions' `gen_ai.*` attributes and
 * metrics, and the decisions of sluice's other packages (retries, circuits,
 * limits, trims, costs, budgets) as span events and metrics of its own.
 */
export { otel, INSTRUMENTATION_NAME, type OtelMiddleware } from './otel.js';
export type { OtelOptions } from './options.js';
export { SLUICE_METRIC } from './instruments.js';
export { ATTR, METRIC, TOKEN_BUCKETS, SECONDS_BUCKETS, type SemconvVersion } from './semconv.js';
