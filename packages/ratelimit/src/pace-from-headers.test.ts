import { describe, expect, it } from 'vitest';
import { headerPauseMs, parseDuration } from './pace-from-headers.js';

describe('parseDuration', () => {
  it.each([
    ['6m0s', 360_000],
    ['1s', 1_000],
    ['20ms', 20],
    ['1h2m3.5s', 3_723_500],
    ['2m59.56s', 179_560],
    ['1.5', 1_500],
    ['0s', 0],
  ])('reads %s as %i ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'soon', '5 s', '1d', '-1s', '1s trailing'])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });
});

describe('headerPauseMs', () => {
  it('pauses until the later reset of whatever is exhausted', () => {
    expect(
      headerPauseMs({
        'x-ratelimit-remaining-requests': '0',
        'x-ratelimit-reset-requests': '1s',
        'x-ratelimit-remaining-tokens': '0',
        'x-ratelimit-reset-tokens': '6m0s',
      }),
    ).toBe(360_000);
  });

  it('does not pause while something remains, or without a readable reset', () => {
    expect(headerPauseMs({ 'x-ratelimit-remaining-requests': '3', 'x-ratelimit-reset-requests': '1s' })).toBeUndefined();
    expect(headerPauseMs({ 'x-ratelimit-remaining-tokens': '0' })).toBeUndefined();
    expect(headerPauseMs({ 'x-ratelimit-remaining-tokens': '0', 'x-ratelimit-reset-tokens': 'later' })).toBeUndefined();
    expect(headerPauseMs({})).toBeUndefined();
  });
});
