import { createEmitter } from '@sluice/core';
import { describe, expect, it } from 'vitest';
import { recordEvents } from './record-events.js';

const progress = (done: number) => ({ done, failed: 0, total: 3 });

describe('recordEvents', () => {
  it('records every event in order, even with no listener', () => {
    const emitter = createEmitter();
    const recorder = recordEvents(emitter);
    emitter.emit('batch-progress', progress(1));
    emitter.emit('listener-error', { error: 'boom' });
    emitter.emit('batch-progress', progress(2));

    expect(recorder.names()).toEqual(['batch-progress', 'listener-error', 'batch-progress']);
    expect(recorder.of('batch-progress')).toEqual([progress(1), progress(2)]);
    expect(recorder.all[1]).toEqual({ name: 'listener-error', payload: { error: 'boom' } });
  });

  it('keeps only the named events when given names, as a listener of each', () => {
    const emitter = createEmitter();
    const recorder = recordEvents(emitter, ['listener-error']);
    emitter.emit('batch-progress', progress(1));
    emitter.emit('listener-error', { error: 'boom' });
    expect(recorder.names()).toEqual(['listener-error']);
    expect(emitter.listenerCount('listener-error')).toBe(1);
  });

  it('counts as a listener, so an emitter that emits only when listened to still emits', () => {
    const emitter = createEmitter();
    const recorder = recordEvents(emitter);
    if (emitter.listenerCount('batch-progress') > 0) emitter.emit('batch-progress', progress(1));
    expect(recorder.names()).toEqual(['batch-progress']);
  });

  it('next resolves with the next matching event emitted', async () => {
    const emitter = createEmitter();
    const recorder = recordEvents(emitter);
    emitter.emit('batch-progress', progress(1));
    const second = recorder.next('batch-progress', (payload) => payload.done === 2);
    emitter.emit('batch-progress', progress(3));
    setImmediate(() => emitter.emit('batch-progress', progress(2)));
    await expect(second).resolves.toEqual(progress(2));
  });

  it('leaves listeners and their error handling as they were', () => {
    const emitter = createEmitter();
    const recorder = recordEvents(emitter);
    const heard: number[] = [];
    emitter.on('batch-progress', (payload) => {
      heard.push(payload.done);
      throw new Error('listener bug');
    });
    emitter.emit('batch-progress', progress(1));
    expect(heard).toEqual([1]);
    expect(recorder.names()).toEqual(['batch-progress', 'listener-error']);
  });

  it('stops recording and restores the emitter', () => {
    const emitter = createEmitter();
    const emit = emitter.emit;
    const recorder = recordEvents(emitter);
    recorder.stop();
    emitter.emit('batch-progress', progress(1));
    expect(recorder.all).toEqual([]);
    expect(emitter.emit).toBe(emit);
    expect(Object.hasOwn(emitter, 'emit')).toBe(false);
    expect(emitter.listenerCount('batch-progress')).toBe(0);
    expect(emitter.listenerCount('listener-error')).toBe(0);
  });
});
