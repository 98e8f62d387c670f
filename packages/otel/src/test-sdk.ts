import type { Attributes } from '@opentelemetry/api';
import { closeTestPipelines } from '@sluice/testing/kit';
import { afterEach, beforeEach } from 'vitest';
import {
  AggregationTemporality,
  type DataPoint,
  type Histogram,
  InMemoryMetricExporter,
  MeterProvider,
  type MetricData,
  PeriodicExportingMetricReader,
} from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

/** The real SDK's tracer and meter providers, exporting to memory; for this package's tests. */
export interface TestSdk {
  tracerProvider: BasicTracerProvider;
  meterProvider: MeterProvider;
  /** Every span ended so far. */
  spans(): ReadableSpan[];
  /** The one ended span named `name`. */
  span(name: string): ReadableSpan;
  /** Collects and returns the metric named `name`, if any point was recorded. */
  metric(name: string): Promise<MetricData | undefined>;
  /** The histogram points of `name`. */
  histogram(name: string): Promise<Array<DataPoint<Histogram>>>;
  /** The points of a counter or gauge. */
  points(name: string): Promise<Array<DataPoint<number>>>;
  shutdown(): Promise<void>;
}

/** Starts a {@link TestSdk}. */
export function testSdk(): TestSdk {
  const spanExporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spanExporter)] });
  const metricExporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // Exports only when flushed: the interval is never reached in a test.
  const reader = new PeriodicExportingMetricReader({ exporter: metricExporter, exportIntervalMillis: 2 ** 31 - 1 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const metric = async (name: string) => {
    metricExporter.reset();
    await reader.forceFlush();
    const all = metricExporter.getMetrics().flatMap((resource) => resource.scopeMetrics.flatMap((scope) => scope.metrics));
    return all.find((data) => data.descriptor.name === name);
  };
  const spans = () => spanExporter.getFinishedSpans();
  return {
    tracerProvider,
    meterProvider,
    spans,
    span(name) {
      const found = spans().filter((span) => span.name === name);
      if (found.length !== 1) throw new Error(`expected one span named ${name}, found ${found.length}`);
      return found[0] as ReadableSpan;
    },
    metric,
    async histogram(name) {
      return ((await metric(name))?.dataPoints ?? []) as Array<DataPoint<Histogram>>;
    },
    async points(name) {
      return ((await metric(name))?.dataPoints ?? []) as Array<DataPoint<number>>;
    },
    async shutdown() {
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
    },
  };
}

/** The point of `points` whose attributes include `attributes`. */
export function pointWith<P extends { attributes: Attributes }>(points: readonly P[], attributes: Attributes): P | undefined {
  return points.find((point) => Object.entries(attributes).every(([key, value]) => point.attributes[key] === value));
}

/**
 * Gives each test of the file a fresh {@link TestSdk} through `use`, and
 * after it closes the test's pipelines, then the SDK.
 *
 * @param use - receives the test's SDK
 */
export function useTestSdk(use: (sdk: TestSdk) => void): void {
  let current: TestSdk | undefined;
  beforeEach(() => {
    current = testSdk();
    use(current);
  });
  afterEach(async () => {
    await closeTestPipelines();
    await current?.shutdown();
  });
}

/** The options `otel()` takes to record into `sdk`. */
export const providersOf = (sdk: TestSdk) => ({ tracerProvider: sdk.tracerProvider, meterProvider: sdk.meterProvider });
