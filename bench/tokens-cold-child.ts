/**
 * Child process of the `tokens-cold` benchmark: one first count in a fresh
 * process, reported over IPC, so nothing is warm but what loading warmed.
 *
 * - `first <class> <encoder>`: loads the encoder (`sluice`: `await
 *   loadTokenizer('gpt-4o')`; `sluice-cold`: the same load without its
 *   warm-up; `js-tiktoken`: `new Tiktoken(o200k_base)`),
 *   untimed; builds a 100,000-character text of the class; times its first
 *   count, then the count of another text of the class (warm). The parent
 *   kills a child that passes its time limit.
 *
 * Only its types may be imported (`import type`): importing it runs it.
 * Run by `tokens-cold.bench.ts` through `fork()`, with the parent's tsx loader.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';
import type { InputClass } from './tokens-cold-texts.js';

/** What a child sends its parent. */
export type ColdMessage =
  | { type: 'ready' }
  | { type: 'count'; ms: number; cpuMs: number; warmMs: number; warmCpuMs: number; tokens: number; approximate: boolean }
  | { type: 'done' };

/** The encoders a `first` child can count with. */
export type ColdEncoder = 'sluice' | 'sluice-cold' | 'js-tiktoken';

function send(message: ColdMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send) process.send(message, () => resolve());
    else {
      console.log(JSON.stringify(message));
      resolve();
    }
  });
}

const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

async function firstCount(kind: InputClass, encoder: ColdEncoder): Promise<void> {
  // Imported here, so the import modes load nothing before what they time.
  const make = (await import('./tokens-cold-texts.js')).inputClasses[kind];
  let count: (text: string) => { tokens: number; approximate: boolean };
  if (encoder === 'sluice' || encoder === 'sluice-cold') {
    const { countTokens, loadTokenizer, tokenizerFor } = await import('@sluice/context');
    // `sluice-cold`: the rank file loaded and the encoder built, without loadTokenizer's warm-up.
    if (encoder === 'sluice') await loadTokenizer('gpt-4o');
    else await (tokenizerFor('gpt-4o') as unknown as { load(warm: boolean): Promise<void> }).load(false);
    count = (text) => countTokens(text, 'gpt-4o');
  } else {
    const { Tiktoken } = await import('js-tiktoken/lite');
    const ranks = (await import('js-tiktoken/ranks/o200k_base')).default;
    const tiktoken = new Tiktoken(ranks);
    count = (text) => ({ tokens: tiktoken.encode(text).length, approximate: false });
  }
  const text = make(1, 100_000);
  const other = make(2, 100_000);
  await send({ type: 'ready' });
  const cpu = cpuNow();
  let started = performance.now();
  const first = count(text);
  const ms = performance.now() - started;
  const cpuMs = cpuNow() - cpu;
  const warmCpu = cpuNow();
  started = performance.now();
  count(other);
  const warmMs = performance.now() - started;
  await send({ type: 'count', ms, cpuMs, warmMs, warmCpuMs: cpuNow() - warmCpu, ...first });
}

async function main(): Promise<void> {
  const [mode, kind, encoder] = process.argv.slice(2);
  if (mode === 'first' && kind && (encoder === 'sluice' || encoder === 'sluice-cold' || encoder === 'js-tiktoken')) {
    await firstCount(kind as InputClass, encoder);
  } else throw new Error(`tokens-cold-child: bad arguments ${process.argv.slice(2).join(' ')}`);
  await send({ type: 'done' });
  process.disconnect?.();
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
