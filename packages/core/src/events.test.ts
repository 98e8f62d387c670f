import { describe, expect, it } from 'vitest';
import { createEmitter } from './events.js';

describe('SluiceEmitter', () => {
  it('lets every listener hear an event when one of them throws, and reports the throw', () => {
    const events = createEmitter();
    const heard: string[] = [];
    const reported: unknown[] = [];
    events.on('listener-error', (event) => reported.push(event));
    events.on('batch-progress', () => heard.push('first'));
    events.on('batch-progress', () => {
      throw new Error('listener bug');
    });
    events.once('batch-progress', () => heard.push('once'));
    events.on('batch-progress', () => heard.push('last'));
    expect(events.emit('batch-progress', { done: 1, failed: 0, total: 2 })).toBe(true);
    events.emit('batch-progress', { done: 2, failed: 0, total: 2 });
    expect(heard).toEqual(['first', 'once', 'last', 'first', 'last']);
    expect(reported).toMatchObject([{ event: 'batch-progress' }, { event: 'batch-progress' }]);
  });

  it('returns false when nobody listens', () => {
    expect(createEmitter().emit('batch-progress', { done: 1, failed: 0, total: 1 })).toBe(false);
  });
});
