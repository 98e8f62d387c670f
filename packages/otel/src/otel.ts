import { metrics, trace, type Meter, type ObservableResult, type Tracer } from '@opentelemetry/api';
import type { CompletionContext, Middleware, SluiceEmitter } from '@sluice/core';
import { CallTelemetry } from './call-telemetry.js';
import { EventRouter } from './event-router.js';
import { createInstruments, type Instruments, SLUICE_METRIC } from './instruments.js';
import { type OtelOptions, resolveOptions } from './options.js';

/**
 * The instrumentation scope's name, what a backend shows as the library.
 *
 * @example
 * ```ts
 * const ours = spans.filter((span) => span.instrumentationScope.name === INSTRUMENTATION_NAME);
 * ```
 */
export const INSTRUMENTATION_NAME = '@sluice/otel';

/**
 * The middleware {@link otel} returns, with its second instrument: `attempt`,
 * to `use` right after `retry`, opens one child span per attempt.
 *
 * @example
 * ```ts
 * const telemetry: OtelMiddleware = otel();
 * llm.use(telemetry).use(retry()).use(telemetry.attempt);
 * ```
 */
export interface OtelMiddleware extends Middleware {
  /**
   * The attempt instrument: placed after `retry`, it runs once per attempt
   * and records each as a `sluice.attempt` span under the call's, with the
   * limiter waits and circuit changes it met. Without the call instrument
   * before it in the pipeline, it passes calls through untouched.
   */
  readonly attempt: Middleware;
}

/**
 * Records each call with the OpenTelemetry GenAI semantic conventions: a
 * CLIENT span `chat {model}` with the `gen_ai.*` request, response and usage
 * attributes (`error.type` and an error status on failure), and the
 * `gen_ai.client.*` metrics (token usage, operation duration, and for
 * streams time to first chunk and time per output chunk), through
 * `@opentelemetry/api` only. Decisions of the other sluice packages
 * (retries, circuit changes, limiter waits, trims, costs, budget refusals)
 * become span events and sluice's own metrics. Prompts and completions are
 * recorded only with `captureContent`; API keys never.
 *
 * Use it outermost, so the span covers the whole call; add its `attempt`
 * instrument after `retry` for one child span per attempt.
 *
 * @param options - providers, content capture, convention version, provider name
 * @throws ValidationError naming the bad option (`otel.semconv`)
 * @example
 * ```ts
 * const telemetry = otel();
 * const llm = createPipeline({ transport })
 *   .use(telemetry)            // outermost: one `chat {model}` span per call
 *   .use(retry({ attempts: 3 }))
 *   .use(telemetry.attempt)    // inside retry: one child span per attempt
 *   .use(breaker());
 * ```
 */
export function otel(options?: OtelOptions): OtelMiddleware {
  const config = resolveOptions(options);
  const tracer: Tracer = (config.tracerProvider ?? trace.getTracerProvider()).getTracer(INSTRUMENTATION_NAME);
  const meter: Meter = (config.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME);
  const instruments: Instruments = createInstruments(meter);
  const evictions = watchEvictions(meter);
  // One router per pipeline emitter: events are heard once, not once per call in flight.
  const routers = new WeakMap<SluiceEmitter, EventRouter>();
  const routerOf = (ctx: CompletionContext) => {
    let router = routers.get(ctx.events);
    if (router === undefined) {
      routers.set(ctx.events, (router = new EventRouter(ctx.events, instruments)));
      evictions.watch(ctx.store);
    }
    return router;
  };

  async function otel(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const router = routerOf(ctx);
    // Placed inside retry by mistake, a re-entry is an attempt of the call
    // already recorded, not a second call.
    const known = router.get(ctx.id);
    if (known !== undefined) return attempt(known, ctx, next, true);
    const call = new CallTelemetry(ctx, tracer, instruments, config);
    const stop = router.add(ctx.id, call);
    // Registered before any response exists, this hears the call's final
    // outcome: a stream's only once it was read to its end, cut or cancelled.
    ctx.onSettled(async (settlement) => {
      // Settlement listeners start one after the other, this one first (it
      // is outermost): yielding once lets the others' synchronous part run,
      // so what they emit as they start (trackCost's `cost`) reaches the span
      // before it ends.
      await null;
      stop();
      call.finish(settlement);
    });
    await call.withSpan(call.span, next);
    if (ctx.stream && ctx.chunks) ctx.chunks = call.watch(ctx.chunks);
  }

  async function otelAttempt(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const call = routers.get(ctx.events)?.get(ctx.id);
    if (call === undefined) return next();
    return attempt(call, ctx, next);
  }

  return Object.assign(otel, { attempt: otelAttempt });
}

/**
 * `sluice.store.evicted`: records the memory stores of the pipelines this
 * middleware ran in dropped to keep their bound before the records ran out
 * (each one a key's budget, limit or circuit forgotten early), summed over
 * those stores, observed when the meter collects. A store is held weakly;
 * one that is gone keeps its last count in the sum, so the counter never
 * goes down. Stores without an `evicted` count (Redis) are not watched.
 */
function watchEvictions(meter: Meter): { watch(store: unknown): void } {
  const watched: Array<{ store: WeakRef<{ readonly evicted: number }>; last: number }> = [];
  let gone = 0;
  let observing = false;
  const counter = meter.createObservableCounter(SLUICE_METRIC.storeEvicted, {
    description: 'Records a sluice memory store evicted to keep its bound before they ran out: state forgotten early.',
    unit: '{record}',
  });
  const observe = (result: ObservableResult) => {
    let total = gone;
    for (let index = watched.length - 1; index >= 0; index--) {
      const entry = watched[index] as (typeof watched)[number];
      const store = entry.store.deref();
      if (store === undefined) {
        gone += entry.last;
        watched.splice(index, 1);
      } else entry.last = store.evicted;
      total += entry.last;
    }
    result.observe(total);
  };
  return {
    watch(store) {
      const evicted = (store as { evicted?: unknown } | undefined)?.evicted;
      if (typeof evicted !== 'number' || watched.some((entry) => entry.store.deref() === store)) return;
      watched.push({ store: new WeakRef(store as { readonly evicted: number }), last: evicted });
      if (!observing) {
        observing = true;
        counter.addCallback(observe);
      }
    },
  };
}

/** Runs one attempt of a recorded call inside its own child span. */
async function attempt(call: CallTelemetry, ctx: CompletionContext, next: () => Promise<void>, reentered = false): Promise<void> {
  const span = call.startAttempt(reentered);
  try {
    await call.withSpan(span, next);
  } catch (error) {
    call.endAttempt(span, error);
    throw error;
  }
  if (!ctx.stream) return call.endAttempt(span, undefined);
  // After next() resolved this binds to this attempt's stream: it ends when the stream does.
  ctx.onSettled((settlement) => call.endAttempt(span, settlement.outcome === 'error' ? settlement.error : undefined));
}
