import { ValidationError } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { breaker } from './breaker.js';
import type { BreakerOptions } from './options.js';

describe('breaker options', () => {
  const invalid: Array<[unknown, string]> = [
    [{ failures: 0 }, 'breaker.failures'],
    [{ failures: 2.5 }, 'breaker.failures'],
    [{ failures: true }, 'breaker.failures'],
    [{ failureRate: { threshold: 0, windowMs: 1_000 } }, 'breaker.failureRate.threshold'],
    [{ failureRate: { threshold: 1.5, windowMs: 1_000 } }, 'breaker.failureRate.threshold'],
    [{ failureRate: { threshold: 0.5 } }, 'breaker.failureRate.windowMs'],
    [{ failureRate: { threshold: 0.5, windowMs: 1_000, minimumCalls: 0 } }, 'breaker.failureRate.minimumCalls'],
    [{ failureRate: { threshold: 0.5, windowMs: 1_000, buckets: 0 } }, 'breaker.failureRate.buckets'],
    [{ slowCallMs: -1 }, 'breaker.slowCallMs'],
    [{ openMs: 0 }, 'breaker.openMs'],
    [{ openMs: Infinity }, 'breaker.openMs'],
    [{ backoff: { factor: 0.5, maxMs: 60_000 } }, 'breaker.backoff.factor'],
    [{ backoff: { factor: 2, maxMs: 10_000 } }, 'breaker.backoff.maxMs'],
    [{ probes: 0 }, 'breaker.probes'],
    [{ key: 'per-model' }, 'breaker.key'],
    [{ key: { tag: '' } }, 'breaker.key'],
    [{ isFailure: true }, 'breaker.isFailure'],
    [{ store: new Map() }, 'breaker.store'],
    [{ onStoreError: 'retry' }, 'breaker.onStoreError'],
  ];

  it.each(invalid)('rejects %j naming %s', (options, field) => {
    expect(() => breaker(options as BreakerOptions)).toThrow(ValidationError);
    expect(() => breaker(options as BreakerOptions)).toThrow(expect.objectContaining({ code: 'VALIDATION', field }));
  });

  it('rejects an unknown option, naming it, and the prefix option that the store namespace replaced', () => {
    expect(() => breaker({ failurs: 3 } as BreakerOptions)).toThrow(/failurs/);
    expect(() => breaker({ prefix: 'llm:' } as BreakerOptions)).toThrow(/prefix/);
    // What opossum, cockatiel and Polly call these options.
    expect(() => breaker({ resetTimeout: 5_000 } as BreakerOptions)).toThrow('breaker.resetTimeout: is not an option; use openMs');
    expect(() => breaker({ failureThreshold: 3 } as BreakerOptions)).toThrow(/breaker\.failureThreshold: is not an option; use failures/);
    expect(() => breaker({ errorThresholdPercentage: 50 } as BreakerOptions)).toThrow(/use failureRate/);
  });

  it('accepts no options at all, every key form, and failures: false with a failure rate', () => {
    expect(breaker().name).toBe('breaker');
    for (const key of ['global', 'model', 'origin-model', { tag: 'tenant' }, () => 'k'] as const) expect(() => breaker({ key })).not.toThrow();
    for (const onStoreError of ['open', 'closed', 'memory'] as const) expect(() => breaker({ onStoreError })).not.toThrow();
    expect(() => breaker({ failures: false, failureRate: { threshold: 0.5, windowMs: 60_000, minimumCalls: 20 } })).not.toThrow();
  });
});
