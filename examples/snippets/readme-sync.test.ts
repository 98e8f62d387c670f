/**
 * Keeps every README's first TypeScript example identical to its snippet
 * here, which CI type-checks (and runs, for the test-shaped one), so the
 * docs cannot drift from the code.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const firstExample = (markdown: string) => /```ts\n([\s\S]*?)```/.exec(markdown)?.[1] ?? '';
const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

describe('README examples', () => {
  it.each([
    ['core', 'core.ts'],
    ['retry', 'retry.ts'],
    ['breaker', 'breaker.ts'],
    ['ratelimit', 'ratelimit.ts'],
    ['context', 'context.ts'],
    ['cost', 'cost.ts'],
    ['otel', 'otel.ts'],
    ['cache', 'cache.ts'],
    ['router', 'router.ts'],
    ['testing', 'testing.test.ts'],
    ['redis', 'redis.ts'],
    ['ai-sdk', 'ai-sdk.ts'],
  ])('packages/%s/README.md shows examples/snippets/%s as it is', (name, snippet) => {
    const example = firstExample(read(`../../packages/${name}/README.md`));
    expect(example.length).toBeGreaterThan(0);
    expect(read(`./${snippet}`)).toContain(example);
  });

  it('packages/testing/README.md shows examples/snippets/testing-kit.test.ts in "Testing your own middleware"', () => {
    const section = read('../../packages/testing/README.md').split('## Testing your own middleware')[1] ?? '';
    const example = firstExample(section);
    expect(example.length).toBeGreaterThan(0);
    expect(read('./testing-kit.test.ts')).toContain(example);
  });

  it.each(['openai', 'ai-sdk-fetch', 'server'])('the root README shows the %s region of examples/snippets/interop.ts as it is', (name) => {
    const source = read('./interop.ts');
    const body = new RegExp(`// #region ${name}\\n([\\s\\S]*?)\\n\\s*// #endregion ${name}`).exec(source)?.[1] ?? '';
    const dedented = body.split('\n').map((line) => line.replace(/^ {2}/, '')).join('\n');
    expect(dedented.length).toBeGreaterThan(0);
    expect(read('../../README.md')).toContain(dedented);
  });

  it('the root README shows examples/snippets/ai-sdk.ts as it is', () => {
    expect(read('../../README.md')).toContain(read('./ai-sdk.ts'));
  });

  it('the root README shows examples/readme.ts as it is', () => {
    const root = read('../../README.md');
    const example = /## Fifteen lines\n\n```ts\n([\s\S]*?)```/.exec(root)?.[1] ?? '';
    expect(example.length).toBeGreaterThan(0);
    expect(read('../readme.ts')).toContain(example);
  });
});
