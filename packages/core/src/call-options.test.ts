import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { callOptionsSchema, plainCallOptions } from './call-options.js';

const parent = { remainingMs: () => 1_000 };
const value = fc.oneof(
  fc.constant(undefined),
  fc.constant(null),
  fc.constant(new AbortController().signal),
  fc.constant(parent),
  fc.constant({}),
  fc.constant([]),
  fc.constant(Object.freeze({ tenant: 'acme' })),
  fc.double(),
  fc.integer(),
  fc.string(),
  fc.dictionary(fc.string(), fc.oneof(fc.string(), fc.integer())),
);
const options = fc.dictionary(fc.constantFrom('signal', 'timeoutMs', 'tags', 'parent', 'timeout', 'metadata', '__proto__x'), value);

describe('plainCallOptions', () => {
  it('vouches only for options the schema accepts', () => {
    fc.assert(
      fc.property(options, (given) => {
        if (plainCallOptions(given) !== undefined) expect(callOptionsSchema.safeParse(given).success).toBe(true);
      }),
      { numRuns: 2_000 },
    );
  });

  it('vouches for the options routers and servers pass', () => {
    const signal = new AbortController().signal;
    const tags = Object.freeze({ tenant: 'acme' });
    for (const given of [{}, { signal }, { tags }, { parent }, { parent, tags }, { signal, tags, timeoutMs: 2_000 }, { timeoutMs: undefined }]) {
      expect(plainCallOptions(given)).toBe(given);
    }
  });

  it('leaves anything else to the schema, so that its errors are the only ones', () => {
    for (const given of [
      { timeout: 5 },
      { timeoutMs: 0 },
      { timeoutMs: Number.NaN },
      { timeoutMs: Number.POSITIVE_INFINITY },
      { tags: { tenant: 1 } },
      { tags: [] },
      { tags: new Map() },
      { signal: {} },
      { parent: {} },
      { timeout: undefined },
      Object.create({ timeoutMs: 5 }),
      [],
      'options',
    ]) {
      expect(plainCallOptions(given)).toBeUndefined();
    }
  });
});
