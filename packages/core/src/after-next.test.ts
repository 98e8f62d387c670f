import { describe, expect, it } from 'vitest';
import { afterNext } from './after-next.js';

describe('afterNext', () => {
  it('goes on with answered when next resolves, with what answered gives', async () => {
    await expect(afterNext(() => Promise.resolve(), () => 'answered', () => 'failed')).resolves.toBe('answered');
  });

  it('goes to failed with what next rejected with, or threw at once', async () => {
    const seen: unknown[] = [];
    const failed = (error: unknown) => {
      seen.push(error);
      throw error;
    };
    await expect(afterNext(() => Promise.reject(new Error('later')), () => 'answered', failed)).rejects.toThrow('later');
    await expect(
      afterNext(
        () => {
          throw new Error('at once');
        },
        () => 'answered',
        failed,
      ),
    ).rejects.toThrow('at once');
    expect(seen.map((error) => (error as Error).message)).toEqual(['later', 'at once']);
  });

  it('lets failed recover the call', async () => {
    await expect(afterNext(() => Promise.reject(new Error('x')), () => 1, () => 2)).resolves.toBe(2);
  });
});
