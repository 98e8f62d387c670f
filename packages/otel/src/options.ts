import type { MeterProvider, TracerProvider } from '@opentelemetry/api';
import { parseOptions } from '@sluice/core/kit';
import * as z from 'zod/mini';
import { readOptIn, type SemconvVersion, semconvFromOptIn } from './semconv.js';

/**
 * Options of {@link otel}. Every field is optional.
 *
 * @example
 * ```ts
 * const options: OtelOptions = { captureContent: false, provider: 'deepseek' };
 * ```
 */
export interface OtelOptions {
  /** Where spans go (default: the global tracer provider `@opentelemetry/api` holds). */
  tracerProvider?: TracerProvider;
  /** Where metrics go (default: the global meter provider). */
  meterProvider?: MeterProvider;
  /**
   * Record prompts and completions on the call's span as
   * `gen_ai.input.messages` and `gen_ai.output.messages` (JSON strings).
   * Off by default: they may hold personal data. API keys and headers are
   * never recorded, whatever this says.
   */
  captureContent?: boolean;
  /**
   * Which version of the GenAI conventions to emit. Default: `'latest'` when
   * `OTEL_SEMCONV_STABILITY_OPT_IN` lists `gen_ai_latest_experimental`, else
   * `'v1.36'`, as the conventions' transition plan asks.
   */
  semconv?: SemconvVersion;
  /**
   * The `gen_ai.provider.name` (`gen_ai.system` in v1.36): default from the
   * transport's host (`api.deepseek.com` is `deepseek`), `openai` for any
   * other host, since that is the API every sluice transport speaks.
   */
  provider?: string;
}

/** {@link OtelOptions} with defaults resolved. */
export interface ResolvedOtelOptions {
  tracerProvider: TracerProvider | undefined;
  meterProvider: MeterProvider | undefined;
  captureContent: boolean;
  semconv: SemconvVersion;
  provider: string | undefined;
}

const hasMethod = (method: string) => (value: unknown) =>
  typeof value === 'object' && value !== null && typeof (value as Record<string, unknown>)[method] === 'function';

const schema = z.strictObject({
  tracerProvider: z.optional(z.custom<TracerProvider>(hasMethod('getTracer'), 'must be a TracerProvider (an object with getTracer)')),
  meterProvider: z.optional(z.custom<MeterProvider>(hasMethod('getMeter'), 'must be a MeterProvider (an object with getMeter)')),
  captureContent: z.optional(z.boolean()),
  semconv: z.optional(z.enum(['v1.36', 'latest'])),
  provider: z.optional(z.string().check(z.minLength(1))),
});

/**
 * Validates `otel`'s options and resolves the defaults.
 *
 * @param options - what the caller passed
 * @throws ValidationError naming the field (`otel.semconv`)
 */
export function resolveOptions(options: OtelOptions | undefined): ResolvedOtelOptions {
  const parsed = parseOptions(schema, options ?? {}, 'otel');
  return {
    tracerProvider: parsed.tracerProvider,
    meterProvider: parsed.meterProvider,
    captureContent: parsed.captureContent ?? false,
    semconv: parsed.semconv ?? semconvFromOptIn(readOptIn()),
    provider: parsed.provider,
  };
}
