/**
 * The names, units and bucket boundaries of the OpenTelemetry GenAI
 * semantic conventions this package implements (semantic-conventions
 * v1.41.1, the last release to carry them before they moved to their own
 * repository, whose client metrics and inference span are the same), and
 * the v1.36.0 shape it emits unless told otherwise.
 */

/**
 * Which version of the GenAI conventions to emit: `'v1.36'` (the shape
 * instrumentations emitted before the conventions' transition plan, and the
 * default the plan asks for) or `'latest'` (v1.41.1, what
 * `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental` selects).
 *
 * @example
 * ```ts
 * otel({ semconv: 'latest' });
 * ```
 */
export type SemconvVersion = 'v1.36' | 'latest';

/** The value of `OTEL_SEMCONV_STABILITY_OPT_IN` that selects the newest GenAI conventions. */
export const LATEST_OPT_IN = 'gen_ai_latest_experimental';

/**
 * `gen_ai.client.token.usage` boundaries, in tokens.
 *
 * @example
 * ```ts
 * new View({ instrumentName: METRIC.tokenUsage, aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [...TOKEN_BUCKETS] } } });
 * ```
 */
export const TOKEN_BUCKETS: readonly number[] = [
  1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
];

/**
 * `gen_ai.client.operation.duration`, `…time_to_first_chunk` and
 * `…time_per_output_chunk` boundaries, in seconds (the conventions give
 * the three the same list).
 *
 * @example
 * ```ts
 * expect(point.value.buckets.boundaries).toEqual(SECONDS_BUCKETS);
 * ```
 */
export const SECONDS_BUCKETS: readonly number[] = [
  0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];

/**
 * The conventions' attribute names this package sets.
 *
 * @example
 * ```ts
 * const tokens = span.attributes[ATTR.usageInputTokens];
 * ```
 */
export const ATTR = {
  operationName: 'gen_ai.operation.name',
  /** The provider, from v1.37 on. */
  providerName: 'gen_ai.provider.name',
  /** The provider, up to v1.36. */
  system: 'gen_ai.system',
  requestModel: 'gen_ai.request.model',
  requestMaxTokens: 'gen_ai.request.max_tokens',
  requestTemperature: 'gen_ai.request.temperature',
  requestTopP: 'gen_ai.request.top_p',
  requestFrequencyPenalty: 'gen_ai.request.frequency_penalty',
  requestPresencePenalty: 'gen_ai.request.presence_penalty',
  requestStopSequences: 'gen_ai.request.stop_sequences',
  requestSeed: 'gen_ai.request.seed',
  requestChoiceCount: 'gen_ai.request.choice.count',
  requestStream: 'gen_ai.request.stream',
  outputType: 'gen_ai.output.type',
  responseId: 'gen_ai.response.id',
  responseModel: 'gen_ai.response.model',
  responseFinishReasons: 'gen_ai.response.finish_reasons',
  responseTimeToFirstChunk: 'gen_ai.response.time_to_first_chunk',
  usageInputTokens: 'gen_ai.usage.input_tokens',
  usageOutputTokens: 'gen_ai.usage.output_tokens',
  usageCacheReadInputTokens: 'gen_ai.usage.cache_read.input_tokens',
  usageReasoningOutputTokens: 'gen_ai.usage.reasoning.output_tokens',
  tokenType: 'gen_ai.token.type',
  inputMessages: 'gen_ai.input.messages',
  outputMessages: 'gen_ai.output.messages',
  serverAddress: 'server.address',
  serverPort: 'server.port',
  errorType: 'error.type',
} as const;

/**
 * The conventions' client metric names.
 *
 * @example
 * ```ts
 * new View({ instrumentName: METRIC.operationDuration, attributesProcessors: [] });
 * ```
 */
export const METRIC = {
  tokenUsage: 'gen_ai.client.token.usage',
  operationDuration: 'gen_ai.client.operation.duration',
  timeToFirstChunk: 'gen_ai.client.operation.time_to_first_chunk',
  timePerOutputChunk: 'gen_ai.client.operation.time_per_output_chunk',
} as const;

/**
 * The version `OTEL_SEMCONV_STABILITY_OPT_IN` asks for: `'latest'` when its
 * comma-separated list holds `gen_ai_latest_experimental`, else `'v1.36'`.
 *
 * @param value - the variable's value, if set
 */
export function semconvFromOptIn(value: string | undefined): SemconvVersion {
  if (value === undefined) return 'v1.36';
  return value.split(',').some((entry) => entry.trim() === LATEST_OPT_IN) ? 'latest' : 'v1.36';
}

/**
 * Reads `OTEL_SEMCONV_STABILITY_OPT_IN` where there is a process
 * environment (Node, Bun; Deno with env access). A runtime without one, or
 * one that refuses the read, gets the default.
 */
export function readOptIn(): string | undefined {
  try {
    const env = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process?.env;
    return env?.['OTEL_SEMCONV_STABILITY_OPT_IN'];
  } catch {
    // Deno without --allow-env throws on the read: that is "not set".
    return undefined;
  }
}
