import { describe, expect, it } from 'vitest';
import { requestDeadline } from './request-deadline.js';

describe('requestDeadline', () => {
  const bounded = { timeoutMs: 5_000, maxTimeoutMs: 30_000 };

  it('takes the header, else the default, and cuts either to the bound', () => {
    expect(requestDeadline({ 'x-sluice-timeout-ms': '1200' }, bounded)).toEqual({ ok: true, timeoutMs: 1_200 });
    expect(requestDeadline({}, bounded)).toEqual({ ok: true, timeoutMs: 5_000 });
    expect(requestDeadline({ 'x-sluice-timeout-ms': '600000' }, bounded)).toEqual({ ok: true, timeoutMs: 30_000 });
    expect(requestDeadline({}, { timeoutMs: undefined, maxTimeoutMs: 30_000 })).toEqual({ ok: true, timeoutMs: 30_000 });
    expect(requestDeadline({}, { timeoutMs: undefined, maxTimeoutMs: undefined })).toEqual({ ok: true, timeoutMs: undefined });
    expect(requestDeadline({ 'x-sluice-timeout-ms': '900000' }, { timeoutMs: undefined, maxTimeoutMs: undefined })).toEqual({ ok: true, timeoutMs: 900_000 });
  });

  it.each(['', 'abc', '0', '-1', '1.5', '1e3', '12345678901'])('refuses the header %j, naming it', (value) => {
    expect(requestDeadline({ 'x-sluice-timeout-ms': value }, bounded)).toMatchObject({ ok: false, param: 'x-sluice-timeout-ms' });
  });
});
