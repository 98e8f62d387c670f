import { describe, expect, it, vi } from 'vitest';
import {
  AbortError,
  ClosedError,
  DeadlineError,
  RateLimitError,
  ServerError,
  SluiceError,
  TimeoutError,
  ValidationError,
  toSluiceError,
} from './errors.js';
import { statusCodes } from './test-helpers.js';
import { errorFromUpstream, parseRetryAfter, redact } from './upstream-errors.js';

const upstream = (status: number | undefined, body: unknown, headers: Record<string, string> = {}) =>
  errorFromUpstream({ status, body, headers, now: Date.parse('2026-01-01T00:00:00Z'), secrets: ['sk-live-abcdef'] });

describe('SluiceError', () => {
  it('is recognised across two copies of the package', async () => {
    vi.resetModules();
    const second = './errors.js?copy';
    const copy = (await import(/* @vite-ignore */ second)) as typeof import('./errors.js');
    expect(copy.SluiceError).not.toBe(SluiceError);
    const foreign = new copy.RateLimitError('slow down');
    expect(foreign).toBeInstanceOf(SluiceError);
    expect(foreign).toBeInstanceOf(RateLimitError);
    expect(foreign).not.toBeInstanceOf(ServerError);
    expect(SluiceError.is(foreign)).toBe(true);
  });

  it('keeps code, retryable and cause', () => {
    const cause = new Error('socket hang up');
    const error = new ServerError('503 overloaded', { cause, status: 503 });
    expect(error).toMatchObject({ code: 'SERVER_ERROR', retryable: true, status: 503, cause });
    expect(error.name).toBe('ServerError');
  });

  it('names the field in a ValidationError', () => {
    expect(new ValidationError('retry.attempts', 'must be at least 1').message).toBe('retry.attempts: must be at least 1');
  });

  it('wraps foreign errors without losing them', () => {
    const error = toSluiceError(new TypeError('x is undefined'));
    expect(error).toMatchObject({ code: 'UNEXPECTED', retryable: false });
    expect(error.cause).toBeInstanceOf(TypeError);
  });
});

describe('errorFromUpstream', () => {
  it.each(statusCodes)('maps %i to %s (retryable %s)', (status, code, retryable) => {
    expect(upstream(status, { error: { message: 'x' } })).toMatchObject({ code, retryable, status });
  });

  it('recognises a context-length 400 by code or by message', () => {
    expect(upstream(400, { error: { code: 'context_length_exceeded', message: 'too long' } }).code).toBe(
      'CONTEXT_LENGTH_EXCEEDED',
    );
    expect(upstream(400, { error: { message: "This model's maximum context length is 8192 tokens" } }).code).toBe(
      'CONTEXT_LENGTH_EXCEEDED',
    );
  });

  it('lets x-should-retry override the default', () => {
    expect(upstream(500, {}, { 'x-should-retry': 'false' }).retryable).toBe(false);
    expect(upstream(400, {}, { 'x-should-retry': 'true' }).retryable).toBe(true);
  });

  it('summarises an HTML error page', () => {
    const error = upstream(502, '<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>');
    expect(error).toMatchObject({ code: 'SERVER_ERROR' });
    expect(error.message).toBe('502 502 Bad Gateway');
  });

  it('maps an error object without a status by its type', () => {
    expect(upstream(undefined, { error: { type: 'rate_limit_error', message: 'x' } }).code).toBe('RATE_LIMITED');
    expect(upstream(undefined, { error: { code: 503, message: 'overloaded' } })).toMatchObject({ code: 'SERVER_ERROR', status: 503 });
    expect(upstream(undefined, { error: { message: 'model crashed' } }).code).toBe('SERVER_ERROR');
  });

  it('never repeats the API key the upstream echoed', () => {
    const error = upstream(401, { error: { message: 'Incorrect API key provided: sk-live-abcdef' } });
    expect(error.message).not.toContain('sk-live-abcdef');
    expect(redact('Authorization: Bearer abcdefghijkl', [])).toBe('Authorization: Bearer [redacted]');
  });
});

describe('parseRetryAfter', () => {
  const now = Date.parse('2026-01-01T00:00:00Z');
  it('prefers retry-after-ms', () => {
    expect(parseRetryAfter({ 'retry-after-ms': '1500', 'retry-after': '9' }, now)).toBe(1500);
  });
  it('reads retry-after in seconds', () => {
    expect(parseRetryAfter({ 'retry-after': '2.5' }, now)).toBe(2500);
  });
  it('reads retry-after as an HTTP date', () => {
    expect(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 2026 00:00:07 GMT' }, now)).toBe(7000);
  });
  it('ignores garbage and clamps the past to zero', () => {
    expect(parseRetryAfter({ 'retry-after': 'soon' }, now)).toBeUndefined();
    expect(parseRetryAfter({ 'retry-after': 'Wed, 31 Dec 2025 00:00:00 GMT' }, now)).toBe(0);
  });
});

describe('errors as data', () => {
  it.each([
    ['a 5xx', new ServerError('503'), { retryable: true, final: false, upstreamFault: true }],
    ['a caller abort', new AbortError(), { retryable: false, final: true, upstreamFault: false }],
    ['the deadline', new DeadlineError(1_000), { code: 'DEADLINE_EXCEEDED', retryable: false, final: true, upstreamFault: false }],
    ['a closed pipeline', new ClosedError(), { code: 'CLOSED', final: true }],
    ['a bad option', new ValidationError('x', 'bad'), { final: true, upstreamFault: false }],
    ['an attempt timeout', new TimeoutError('attempt', 60_000), { retryable: true, final: false, upstreamFault: true }],
    ['a 429', new RateLimitError('slow', { retryAfterMs: 1_500 }), { retryable: true, upstreamFault: false, retryAfterMs: 1_500 }],
  ])('%s says what others decide from', (_, error, expected) => {
    expect(error).toMatchObject(expected);
  });

  it('drops a retryAfterMs that is not a finite non-negative number', () => {
    expect(new SluiceError('X', 'x', { retryAfterMs: Number.NaN }).retryAfterMs).toBeUndefined();
    expect(new SluiceError('X', 'x', { retryAfterMs: -1 }).retryAfterMs).toBeUndefined();
  });

  it('names errors with string literals, so minified class names change nothing', () => {
    // What a minifier does: the class's own name is mangled.
    const Mangled = class e extends ServerError {};
    const error = new Mangled('503');
    expect(error.name).toBe('ServerError');
    expect(error).toBeInstanceOf(ServerError);
  });

  it('does not take a subclass without its own brand for its parent across copies', async () => {
    class Custom extends SluiceError {}
    vi.resetModules();
    const second = './errors.js?copy2';
    const copy = (await import(/* @vite-ignore */ second)) as typeof import('./errors.js');
    expect(new copy.SluiceError('X', 'x')).not.toBeInstanceOf(Custom);
    expect(new Custom('X', 'x')).toBeInstanceOf(copy.SluiceError);
  });
});
