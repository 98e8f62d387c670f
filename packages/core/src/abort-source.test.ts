import { describe, expect, it, vi } from 'vitest';
import { AbortSource } from './abort-source.js';

describe('AbortSource', () => {
  it('stops following its parent once detached, and stays aborted if it was', () => {
    const parent = new AbortSource();
    const child = new AbortSource(parent);
    const heard: string[] = [];
    child.addEventListener('abort', () => heard.push('child'));
    child.detach();
    parent.abort('parent left');
    expect(child.aborted).toBe(false);
    expect(heard).toEqual([]);
    child.abort('own');
    expect(child).toMatchObject({ aborted: true, reason: 'own' });
    const other = new AbortSource(parent);
    other.detach();
    expect(other).toMatchObject({ aborted: true, reason: 'parent left' });
  });

  it('runs each listener once, in order, and none added after the abort', () => {
    const source = new AbortSource();
    const heard: string[] = [];
    source.addEventListener('abort', () => heard.push('a'));
    const removed = () => heard.push('removed');
    source.addEventListener('abort', removed);
    source.addEventListener('abort', () => heard.push('b'));
    source.removeEventListener('abort', removed);
    source.abort('why');
    source.abort('again');
    source.addEventListener('abort', () => heard.push('late'));
    expect(heard).toEqual(['a', 'b']);
    expect(source).toMatchObject({ aborted: true, reason: 'why' });
  });

  it('keeps the order of the rest when its first listener goes, and runs one added back last', () => {
    const source = new AbortSource();
    const heard: string[] = [];
    const listener = (name: string) => () => heard.push(name);
    const [a, b, c] = [listener('a'), listener('b'), listener('c')];
    source.addEventListener('abort', a);
    source.addEventListener('abort', b);
    source.addEventListener('abort', c);
    source.removeEventListener('abort', a);
    source.removeEventListener('abort', a);
    source.addEventListener('abort', a);
    source.removeEventListener('abort', c);
    source.abort('why');
    expect(heard).toEqual(['b', 'a']);
  });

  it('reads as aborted with its parent, with the parent’s reason, and runs its own listeners then', () => {
    const parent = new AbortSource();
    const child = new AbortSource(parent);
    const grandchild = new AbortSource(child);
    const heard: string[] = [];
    grandchild.addEventListener('abort', () => heard.push(`grandchild ${String(grandchild.reason)}`));
    child.addEventListener('abort', () => heard.push(`child ${String(child.reason)}`));
    expect(grandchild.aborted).toBe(false);
    parent.abort('closed');
    expect(heard).toEqual(['grandchild closed', 'child closed']);
    expect(grandchild).toMatchObject({ aborted: true, reason: 'closed' });
    child.abort('later');
    expect(child.reason).toBe('closed');
  });

  it('keeps its own reason when it was aborted before its parent, and is no longer called by it', () => {
    const parent = new AbortSource();
    const child = new AbortSource(parent);
    const listener = vi.fn();
    child.addEventListener('abort', listener);
    child.abort('own');
    parent.abort('parent');
    expect(listener).toHaveBeenCalledTimes(1);
    expect(child.reason).toBe('own');
  });

  it('leaves its parent when its last listener goes, and joins it again with a new one', () => {
    const parent = new AbortSource();
    const child = new AbortSource(parent);
    const first = vi.fn();
    child.addEventListener('abort', first);
    child.removeEventListener('abort', first);
    const second = vi.fn();
    child.addEventListener('abort', second);
    parent.abort('done');
    expect(first).not.toHaveBeenCalled();
    expect(second).toHaveBeenCalledTimes(1);
  });

  it('takes no listener once its parent is aborted, and makes an aborted signal', () => {
    const parent = new AbortSource();
    parent.abort('gone');
    const child = new AbortSource(parent);
    const listener = vi.fn();
    child.addEventListener('abort', listener);
    expect(listener).not.toHaveBeenCalled();
    expect(child.toSignal()).toMatchObject({ aborted: true, reason: 'gone' });
  });

  it('makes a signal that follows its parent', () => {
    const parent = new AbortSource();
    const signal = new AbortSource(parent).toSignal();
    parent.abort('stop');
    expect(signal).toMatchObject({ aborted: true, reason: 'stop' });
  });

  it('runs every listener when one throws, and tells its reporter', () => {
    const failures: unknown[] = [];
    const parent = new AbortSource(undefined, { abortListenerFailed: (error) => failures.push(error) });
    const child = new AbortSource(parent);
    const heard: string[] = [];
    parent.addEventListener('abort', () => {
      throw new Error('first');
    });
    child.addEventListener('abort', () => heard.push('child'));
    parent.listen({ sourceAborted: () => heard.push('object') });
    parent.addEventListener('abort', () => heard.push('last'));
    parent.abort('why');
    expect(heard).toEqual(['child', 'object', 'last']);
    expect(failures).toEqual([new Error('first')]);
  });

  it('rethrows a listener’s throw on a later tick when it has no reporter, after the others ran', async () => {
    const source = new AbortSource();
    const heard: string[] = [];
    source.addEventListener('abort', () => {
      throw new Error('unreported');
    });
    source.addEventListener('abort', () => heard.push('second'));
    const thrown = new Promise<unknown>((resolve) => {
      const original = globalThis.queueMicrotask;
      globalThis.queueMicrotask = (task) => {
        globalThis.queueMicrotask = original;
        try {
          task();
        } catch (error) {
          resolve(error);
        }
      };
    });
    expect(() => source.abort('why')).not.toThrow();
    expect(heard).toEqual(['second']);
    await expect(thrown).resolves.toEqual(new Error('unreported'));
  });
});
