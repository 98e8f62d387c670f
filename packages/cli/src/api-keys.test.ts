import { describe, expect, it } from 'vitest';
import { apiKeys } from './api-keys.js';

describe('apiKeys', () => {
  const tenantOf = apiKeys([{ key: 'sk-alice-0123456789', tenant: 'alice' }, { keyEnv: 'BOB_KEY', tenant: 'bob' }], { BOB_KEY: 'sk-bob-0123456789' });

  it('finds the tenant of a bearer key, from the config or the environment', () => {
    expect(tenantOf('Bearer sk-alice-0123456789')).toBe('alice');
    expect(tenantOf('bearer  sk-bob-0123456789')).toBe('bob');
  });

  it('finds none for a wrong, partial, longer or missing key, or another scheme', () => {
    for (const header of [undefined, '', 'Bearer', 'Bearer sk-alice-012345678', 'Bearer sk-alice-01234567890', 'Basic sk-alice-0123456789', 'sk-alice-0123456789']) {
      expect(tenantOf(header)).toBeUndefined();
    }
  });

  it('judges each key on its own, whatever was presented before it', () => {
    const answers = ['Bearer sk-alice-0123456789', 'Bearer sk-alice-0123456780', 'Bearer sk-bob-0123456789', 'Bearer sk-alice-0123456789x'].map(tenantOf);
    expect(answers).toEqual(['alice', undefined, 'bob', undefined]);
  });

  it('names an unset key variable by its place in the config, without any key in the message', () => {
    expect(() => apiKeys([{ key: 'sk-alice-0123456789', tenant: 'alice' }, { keyEnv: 'NOPE', tenant: 'x' }], {})).toThrow(
      expect.objectContaining({ code: 'VALIDATION', field: 'keys.1.keyEnv', message: expect.not.stringContaining('sk-alice') }),
    );
  });
});
