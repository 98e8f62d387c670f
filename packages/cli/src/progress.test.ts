import { Writable } from 'node:stream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { BatchStats } from './batch-stats.js';
import { formatDuration, startProgress } from './progress.js';

afterEach(() => {
  vi.useRealTimers();
});

function sink() {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += String(chunk);
      done();
    },
  });
  return { stream, text: () => text };
}

describe('startProgress when stderr is not a terminal', () => {
  it('prints a plain line per interval and a last one at the end, with done, failed, rate, tokens, spend and ETA', () => {
    vi.useFakeTimers({ now: 0 });
    const out = sink();
    const stats = new BatchStats();
    const progress = startProgress({ stream: out.stream, total: 1_000, stats, intervalMs: 10_000, now: () => Date.now() });
    for (let i = 0; i < 100; i++) stats.success('gpt-4.1', 50, { prompt_tokens: 10, completion_tokens: 5, total_tokens: 15 });
    stats.failure('gpt-4.1', 50, 'SERVER_ERROR');
    stats.spend('gpt-4.1', 0.25);
    vi.advanceTimersByTime(9_999);
    expect(out.text()).toBe('');
    vi.advanceTimersByTime(1);
    // 101 requests in 10 s: 10.1 a second, 899 left: 89 s.
    expect(out.text()).toBe('progress: 101/1,000 lines, 1 failed, 10.1 req/s, 1,500 tokens, $0.2500, ETA 1m29s\n');
    progress.stop();
    progress.stop();
    expect(out.text().split('\n').filter(Boolean)).toHaveLength(2);
    vi.advanceTimersByTime(60_000);
    expect(out.text().split('\n').filter(Boolean)).toHaveLength(2);
  });

  it('leaves the total and ETA out when the input is stdin', () => {
    vi.useFakeTimers({ now: 0 });
    const out = sink();
    const progress = startProgress({ stream: out.stream, total: undefined, stats: new BatchStats(), intervalMs: 1_000 });
    progress.stop();
    expect(out.text()).toBe('progress: 0 lines, 0 failed, 0.0 req/s, 0 tokens, $0.0000\n');
  });
});

describe('formatDuration', () => {
  it.each([
    [42, '42s'],
    [185, '3m05s'],
    [3_720, '1h02m'],
    [undefined, '?'],
    [Number.POSITIVE_INFINITY, '?'],
  ])('%s s reads %s', (seconds, text) => {
    expect(formatDuration(seconds)).toBe(text);
  });
});
