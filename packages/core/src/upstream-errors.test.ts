import { describe, expect, it } from 'vitest';
import { errorFromUpstream, excerpt, redactHeaders } from './upstream-errors.js';

const key = 'sk-live-0123456789abcdef';
const upstream = (status: number | undefined, body: unknown, headers: Record<string, string> = {}) =>
  errorFromUpstream({ status, body, headers, now: 0, secrets: [key] });

describe('excerpt', () => {
  it('masks a key before cutting, so a key split at the cut leaves no prefix', () => {
    const text = `${'a'.repeat(190)}${key} and more`;
    const out = excerpt(text, 200, [key]);
    expect(out).not.toContain(key.slice(0, 8));
    expect(out.length).toBeLessThanOrEqual(201);
  });

  it('leaves short text whole', () => {
    expect(excerpt('fine', 200, [key])).toBe('fine');
  });
});

describe('redactHeaders', () => {
  it('masks a key or a bearer token in any header value', () => {
    const headers = { 'x-echo': `Bearer ${key}`, 'x-key': `key=${key}`, 'x-other': 'ok' };
    expect(redactHeaders(headers, [key])).toEqual({ 'x-echo': 'Bearer [redacted]', 'x-key': 'key=[redacted]', 'x-other': 'ok' });
  });

  it('returns the same object when nothing needed masking', () => {
    const headers = { 'content-type': 'application/json' };
    expect(redactHeaders(headers, [key])).toBe(headers);
  });
});

describe('errorFromUpstream: secrets', () => {
  it('masks a key split across the 200-character cut of a non-JSON body', () => {
    const error = upstream(502, `<html><body>${'a'.repeat(190)}${key}</body></html>`);
    expect(error.message).not.toContain(key.slice(0, 8));
  });

  it('masks a key echoed as the provider code, in the message and in the headers', () => {
    const error = upstream(401, { error: { message: `bad key ${key}`, code: key } }, { 'x-echo': key });
    expect(error.providerCode).not.toContain(key);
    expect(error.message).not.toContain(key);
    expect(error.headers?.['x-echo']).toBe('[redacted]');
  });

  it('cuts a very long provider message', () => {
    const error = upstream(500, { error: { message: 'x'.repeat(100_000) } });
    expect(error.message.length).toBeLessThan(1100);
  });
});
