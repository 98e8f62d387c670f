import { createEmitter } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { reportProblems } from './report-problems.js';

/** A stream that keeps what is written to it. */
function captured() {
  const lines: string[] = [];
  return { lines, stream: { write: (text: string) => (lines.push(text), true) } as unknown as NodeJS.WritableStream };
}

describe('reportProblems', () => {
  it('writes each kind of listener and store failure once, and the count at the end', () => {
    const events = createEmitter();
    const { lines, stream } = captured();
    const problems = reportProblems(events, stream, 'sluice batch');
    for (let i = 0; i < 3; i++) events.emit('listener-error', { id: `call_${i}`, error: new Error("ENOSPC: no space left on device, write") });
    events.emit('listener-error', { event: 'cost', error: 'a string' });
    events.emit('store-error', { name: 'ratelimit', key: 'global', operation: 'update', policy: 'open', error: new Error('connection refused'), id: 'call_9' });
    expect(lines).toEqual([
      'sluice batch: warning: a settlement listener failed: ENOSPC: no space left on device, write\n',
      "sluice batch: warning: a listener of 'cost' failed: a string\n",
      'sluice batch: warning: the ratelimit store failed (update, policy open): connection refused\n',
    ]);
    expect(problems.count).toBe(5);
    problems.finish();
    expect(lines.at(-1)).toBe('sluice batch: 5 warning(s) in all (each kind shown once above)\n');
    events.emit('listener-error', { error: new Error('after finish') });
    expect(problems.count).toBe(5);
    expect(lines).toHaveLength(4);
  });

  it('writes nothing at the end of a run without problems', () => {
    const { lines, stream } = captured();
    reportProblems(createEmitter(), stream, 'sluice serve').finish();
    expect(lines).toEqual([]);
  });
});
