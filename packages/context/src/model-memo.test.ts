import { describe, expect, it } from 'vitest';
import { memoByModel } from './model-memo.js';

describe('memoByModel', () => {
  it('computes each name once, undefined results included, until cleared', () => {
    const seen: string[] = [];
    const memo = memoByModel((model) => {
      seen.push(model);
      return model.startsWith('gpt') ? model.length : undefined;
    });
    expect([memo('gpt-4o'), memo('gpt-4o'), memo('claude'), memo('claude')]).toEqual([6, 6, undefined, undefined]);
    expect(seen).toEqual(['gpt-4o', 'claude']);
    memo.clear();
    memo('gpt-4o');
    expect(seen).toEqual(['gpt-4o', 'claude', 'gpt-4o']);
  });

  it('stays bounded however many names it is asked for, and still answers right', () => {
    const memo = memoByModel((model) => `${model}!`, 4);
    for (let index = 0; index < 100; index++) expect(memo(`model-${index}`)).toBe(`model-${index}!`);
    let computed = 0;
    const counting = memoByModel((model) => (computed++, model), 4);
    for (let index = 0; index < 10; index++) counting(`m${index}`);
    expect(computed).toBe(10);
    counting('m9');
    expect(computed).toBe(10);
  });
});
