import {
  AbortError,
  AuthError,
  BadRequestError,
  ConnectionError,
  MalformedResponseError,
  RateLimitError,
  ServerError,
  type SluiceError,
  StatusError,
  StreamCutError,
  TimeoutError,
  DeadlineError,
  UnexpectedError,
} from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { CircuitOpenError } from './errors.js';
import { isBreakerFailure } from './is-breaker-failure.js';

describe('isBreakerFailure', () => {
  const cases: Array<[string, SluiceError, boolean]> = [
    ['a 5xx', new ServerError('503 busy', { status: 503 }), true],
    ['a connection reset', new ConnectionError('reset'), true],
    ['a stream cut mid-way', new StreamCutError('cut', 3), true],
    ['a malformed answer', new MalformedResponseError('html'), true],
    ['a connect timeout', new TimeoutError('connect', 10_000), true],
    ['a first-byte timeout', new TimeoutError('first-byte', 60_000), true],
    ['an idle stream timeout', new TimeoutError('idle', 60_000), true],
    ['an attempt timeout', new TimeoutError('attempt', 60_000), true],
    ["the caller's own deadline", new DeadlineError(5_000), false],
    ['a 400', new BadRequestError('bad'), false],
    ['a 401', new AuthError('no', { status: 401 }), false],
    ['a 404', new StatusError(404, 'gone'), false],
    ['a 408', new StatusError(408, 'slow request'), false],
    ['a 429', new RateLimitError('slow down'), false],
    ['a caller abort', new AbortError(), false],
    ['an open circuit further in', new CircuitOpenError('k', 'open', 1), false],
    ['an unexpected error', new UnexpectedError(new Error('bug')), false],
  ];

  it.each(cases)('%s → %s', (_, error, expected) => {
    expect(isBreakerFailure(error)).toBe(expected);
  });
});
