/**
 * How much sluice adds to a bundle: each package and the resilience set
 * (core + retry + breaker + ratelimit) bundled by esbuild for
 * `--platform=neutral`, minified, then gzipped, from the packages' source
 * (the published build is the same code). Dependencies are included
 * (zod, eventemitter3, eventsource-parser), peers are not (`ai`), nor are
 * the tokenizer's rank files and optional adapters, which load only when
 * used. Target: the resilience set under 60 KB gzipped. zod's share is
 * the set's size less the set's with zod left out, which counts only the
 * parts of zod the packages use (they import the tree-shakable `zod/mini`).
 *
 * @module
 */
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { table } from './lib.js';

/** Name to select this benchmark: `pnpm bench size`. */
export const name = 'size';
/** What it measures. */
export const description = 'minified and gzipped bundle size of each package and of core + retry + breaker + ratelimit (target < 60 KB gzipped)';

const external = ['ai', 'tiktoken', 'gpt-tokenizer', 'js-tiktoken/ranks/*'];

/** Minified and gzipped bytes of a bundle of `code`, leaving `leftOut` out besides the peers. */
async function measureBundle(code: string, leftOut: readonly string[] = []): Promise<{ minified: number; gzipped: number }> {
  const result = await build({
    stdin: { contents: code, resolveDir: new URL('.', import.meta.url).pathname, loader: 'ts' },
    bundle: true,
    minify: true,
    platform: 'neutral',
    format: 'esm',
    target: 'es2022',
    conditions: ['@sluice/source', 'import', 'default'],
    mainFields: ['module', 'main'],
    external: [...external, ...leftOut],
    write: false,
    logLevel: 'error',
  });
  const bytes = result.outputFiles[0]?.contents ?? new Uint8Array();
  return { minified: bytes.length, gzipped: gzipSync(bytes, { level: 9 }).length };
}

const kb = (bytes: number) => (bytes / 1024).toFixed(1);

/**
 * Runs the benchmark and prints its table and verdict.
 *
 * @throws when a bundle does not build
 */
export async function run(): Promise<void> {
  const packages = ['core', 'retry', 'breaker', 'ratelimit', 'context', 'cost', 'ai-sdk'];
  const rows: string[][] = [['bundle', 'minified KB', 'gzipped KB', 'own (core left out) gz KB']];
  for (const name of packages) {
    const code = `export * from '@sluice/${name}';`;
    const whole = await measureBundle(code);
    const own = name === 'core' ? whole : await measureBundle(code, ['@sluice/core', '@sluice/core/kit']);
    rows.push([`@sluice/${name}`, kb(whole.minified), kb(whole.gzipped), kb(own.gzipped)]);
  }
  const setCode = ['core', 'retry', 'breaker', 'ratelimit'].map((name) => `export * from '@sluice/${name}';`).join('\n');
  const set = await measureBundle(setCode);
  rows.push(['core + retry + breaker + ratelimit', kb(set.minified), kb(set.gzipped), '']);
  const withoutZod = await measureBundle(setCode, ['zod', 'zod/*']);
  rows.push(['of which zod (the set less the set without it)', kb(set.minified - withoutZod.minified), kb(set.gzipped - withoutZod.gzipped), '']);
  console.log(table(rows));
  const pass = set.gzipped < 60 * 1024;
  console.log(`\nbundles: esbuild --bundle --minify --platform=neutral, gzip -9; dependencies included, peers, rank files and optional adapters left out`);
  console.log(`target: core + retry + breaker + ratelimit ${kb(set.gzipped)} KB gzipped (target < 60 KB) ${pass ? 'PASS' : 'MISS'}`);
}
