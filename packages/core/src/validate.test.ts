import { describe, expect, it } from 'vitest';
import * as z from 'zod/mini';
import { closestKey, parseOptions } from './validate.js';

const schema = z.strictObject({
  baseUrl: z.string(),
  apiKey: z.optional(z.string()),
  backoff: z.optional(z.strictObject({ maxMs: z.optional(z.number()), baseMs: z.optional(z.number()) })),
  rules: z.optional(z.array(z.strictObject({ limit: z.number().check(z.int(), z.minimum(1)) }))),
});

describe('parseOptions', () => {
  it('returns the parsed value', () => {
    expect(parseOptions(schema, { baseUrl: 'x' }, 'f')).toEqual({ baseUrl: 'x' });
  });

  it('names the first bad field', () => {
    expect(() => parseOptions(schema, { baseUrl: 1 }, 'f')).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'f.baseUrl' }));
  });

  it("gives zod's English messages for zod/mini schemas, which load no locale", () => {
    expect(() => parseOptions(schema, { baseUrl: 'x', rules: [{ limit: '1' }] }, 'f')).toThrow(
      expect.objectContaining({ message: 'f.rules.0.limit: Invalid input: expected number, received string' }),
    );
    expect(() => parseOptions(schema, { baseUrl: 'x', rules: [{ limit: 0 }] }, 'f')).toThrow(
      expect.objectContaining({ message: 'f.rules.0.limit: Too small: expected number to be >=1' }),
    );
  });

  it('leaves the messages to an error map the application configured', () => {
    z.config({ customError: () => 'bad, says the app' });
    try {
      expect(() => parseOptions(schema, { baseUrl: 1 }, 'f')).toThrow(expect.objectContaining({ message: 'f.baseUrl: bad, says the app' }));
    } finally {
      z.config({ customError: undefined });
    }
  });

  it('reports an unknown key before the missing field it was meant to be, with the nearest known key', () => {
    expect(() => parseOptions(schema, { baseURL: 'x' }, 'f')).toThrow(
      expect.objectContaining({ field: 'f.baseURL', message: 'f.baseURL: is not an option; did you mean baseUrl?' }),
    );
    expect(() => parseOptions(schema, { baseUrl: 'x', apikey: 'k' }, 'f')).toThrow(
      expect.objectContaining({ field: 'f.apikey', message: expect.stringContaining('did you mean apiKey?') }),
    );
  });

  it('suggests keys of nested objects and of objects in arrays', () => {
    expect(() => parseOptions(schema, { baseUrl: 'x', backoff: { capMs: 5 } }, 'retry')).toThrow(
      expect.objectContaining({ field: 'retry.backoff.capMs', message: expect.stringContaining('did you mean maxMs?') }),
    );
    expect(() => parseOptions(schema, { baseUrl: 'x', rules: [{ limit: 1 }, { limt: 2 }] }, 'f')).toThrow(
      expect.objectContaining({ field: 'f.rules.1.limt', message: expect.stringContaining('did you mean limit?') }),
    );
  });

  it('gives a hint for a key that is not a typo, and no guess for a key far from all', () => {
    expect(() => parseOptions(schema, { baseUrl: 'x', timeout: 1 }, 'f', { timeout: 'use the call timeoutMs' })).toThrow(
      expect.objectContaining({ message: 'f.timeout: is not an option; use the call timeoutMs' }),
    );
    expect(() => parseOptions(schema, { baseUrl: 'x', zzzzzz: 1 }, 'f')).toThrow(
      expect.objectContaining({ message: 'f.zzzzzz: is not an option' }),
    );
  });

  it('does not take a hint from the prototype', () => {
    expect(() => parseOptions(schema, { baseUrl: 'x', toString: 1 }, 'f', {})).toThrow(
      expect.objectContaining({ message: 'f.toString: is not an option' }),
    );
  });
});

describe('closestKey', () => {
  it('finds case slips, transpositions and small typos', () => {
    const keys = ['baseUrl', 'apiKey', 'idleTimeoutMs', 'connections'];
    expect(closestKey('BASEURL', keys)).toBe('baseUrl');
    expect(closestKey('apiKye', keys)).toBe('apiKey');
    expect(closestKey('idleTimeout', keys)).toBe('idleTimeoutMs');
    expect(closestKey('conections', keys)).toBe('connections');
  });

  it('finds nothing when every key is far', () => {
    expect(closestKey('model', ['baseUrl', 'apiKey'])).toBeUndefined();
  });
});
