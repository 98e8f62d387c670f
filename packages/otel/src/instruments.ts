import type { Counter, Gauge, Histogram, Meter } from '@opentelemetry/api';
import { METRIC, SECONDS_BUCKETS, TOKEN_BUCKETS } from './semconv.js';

/**
 * sluice's own metric names, beside the conventions'.
 *
 * @example
 * ```ts
 * new View({ instrumentName: SLUICE_METRIC.cost, name: 'llm_spend_usd' });
 * ```
 */
export const SLUICE_METRIC = {
  retries: 'sluice.retries',
  circuitState: 'sluice.circuit.state',
  limitWait: 'sluice.limit.wait.duration',
  cost: 'sluice.cost',
  cacheHits: 'sluice.cache.hits',
  storeEvicted: 'sluice.store.evicted',
} as const;

/** `sluice.circuit.state`'s value for each circuit state. */
export const CIRCUIT_STATE_VALUE: Readonly<Record<string, number>> = { closed: 0, 'half-open': 1, open: 2 };

/** Every instrument the middleware records with, made once per meter. */
export interface Instruments {
  tokenUsage: Histogram;
  operationDuration: Histogram;
  timeToFirstChunk: Histogram;
  timePerOutputChunk: Histogram;
  retries: Counter;
  circuitState: Gauge;
  limitWait: Histogram;
  cost: Counter;
  cacheHits: Counter;
}

/**
 * Creates the instruments on `meter`, with the bucket boundaries the
 * conventions specify given as advice (a view the user configures still wins).
 *
 * @param meter - the meter of this package
 */
export function createInstruments(meter: Meter): Instruments {
  const seconds = { unit: 's', advice: { explicitBucketBoundaries: [...SECONDS_BUCKETS] } };
  return {
    tokenUsage: meter.createHistogram(METRIC.tokenUsage, {
      description: 'Number of input and output tokens used.',
      unit: '{token}',
      advice: { explicitBucketBoundaries: [...TOKEN_BUCKETS] },
    }),
    operationDuration: meter.createHistogram(METRIC.operationDuration, { description: 'GenAI operation duration.', ...seconds }),
    timeToFirstChunk: meter.createHistogram(METRIC.timeToFirstChunk, {
      description: 'Time to receive the first chunk, from when the client issues the generation request.',
      ...seconds,
    }),
    timePerOutputChunk: meter.createHistogram(METRIC.timePerOutputChunk, {
      description: 'Time per output chunk after the first one, from the end of the previous chunk to the end of this one.',
      ...seconds,
    }),
    retries: meter.createCounter(SLUICE_METRIC.retries, { description: 'Attempts sent again by sluice retry.', unit: '{retry}' }),
    circuitState: meter.createGauge(SLUICE_METRIC.circuitState, {
      description: 'State of a sluice circuit: 0 closed, 1 half-open, 2 open (or isolated).',
      unit: '{state}',
    }),
    limitWait: meter.createHistogram(SLUICE_METRIC.limitWait, { description: 'Time a call waited for the sluice rate limiter.', ...seconds }),
    cost: meter.createCounter(SLUICE_METRIC.cost, { description: 'Cost of calls as sluice cost priced them.', unit: '{USD}' }),
    cacheHits: meter.createCounter(SLUICE_METRIC.cacheHits, { description: 'Calls answered from a sluice cache.', unit: '{hit}' }),
  };
}
