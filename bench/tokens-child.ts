/**
 * Child process of the `tokens` benchmark: loads ONE o200k_base encoder
 * in a fresh process and reports, over IPC, its load time and memory;
 * then, when asked (`probe`), times it on pathological inputs (`a` × n,
 * `中` × n) at growing lengths until the next length would take longer
 * than the cap. The parent kills it at a hard time limit, so a library
 * whose merge is worse than quadratic cannot hang the benchmark.
 *
 * Only its types may be imported (`import type`): importing it runs it.
 * Run by `tokens.bench.ts` through `fork()`, with the parent's tsx loader
 * and `--expose-gc`: `tokens-child.ts <encoder> [probe <capMs>]`.
 *
 * @module
 */
import { performance } from 'node:perf_hooks';

/** The encoders a child can load. */
const childEncoders = ['sluice', 'js-tiktoken', 'gpt-tokenizer', 'tiktoken'] as const;
/** One of {@link childEncoders}. */
export type ChildEncoder = (typeof childEncoders)[number];

/** Lengths tried on the pathological inputs, in order. */
const probeLengths = [250, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000] as const;
/** The pathological inputs: one character repeated (one pre-tokenizer piece). */
const probeInputs = ['a', '中'] as const;

/** What a child sends its parent. */
export type ChildMessage =
  | {
      type: 'load';
      /** Importing the library's code, before its ranks (ms). */
      importMs: number;
      /** Loading the ranks and building the encoder, plus the first count (ms). */
      firstCountMs: number;
      /** CPU (user + system) of the import and of the load + first count (ms). */
      importCpuMs: number;
      firstCountCpuMs: number;
      /** memoryUsage() before the import, after it and after the first count, each after gc(). */
      memory: [NodeJS.MemoryUsage, NodeJS.MemoryUsage, NodeJS.MemoryUsage];
    }
  | { type: 'start'; input: string; chars: number }
  | { type: 'probe'; input: string; chars: number; ms: number; tokens: number }
  | { type: 'done' };

type Count = (text: string) => number;

/** Imports the library's code; the returned function loads its o200k_base ranks. */
async function importCode(encoder: ChildEncoder): Promise<() => Promise<Count>> {
  switch (encoder) {
    case 'sluice': {
      // The package loads nothing at import; the first count loads the rank file synchronously.
      const { countTokens } = await import('@sluice/context');
      return async () => (text) => countTokens(text, 'gpt-4o').tokens;
    }
    case 'js-tiktoken': {
      const { Tiktoken } = await import('js-tiktoken/lite');
      return async () => {
        const ranks = (await import('js-tiktoken/ranks/o200k_base')).default;
        const encoding = new Tiktoken(ranks);
        return (text) => encoding.encode(text).length;
      };
    }
    case 'gpt-tokenizer': {
      await import('gpt-tokenizer/GptEncoding');
      return async () => {
        const { countTokens } = await import('gpt-tokenizer/encoding/o200k_base');
        return (text) => countTokens(text);
      };
    }
    case 'tiktoken': {
      // The node entry instantiates the WASM module at import.
      const { get_encoding } = await import('tiktoken');
      return async () => {
        const encoding = get_encoding('o200k_base');
        return (text) => encoding.encode(text).length;
      };
    }
  }
}

function send(message: ChildMessage): Promise<void> {
  return new Promise((resolve) => {
    if (process.send) process.send(message, () => resolve());
    else {
      console.log(JSON.stringify(message));
      resolve();
    }
  });
}

function collect(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}

async function main(): Promise<void> {
  const encoder = process.argv[2] as ChildEncoder;
  if (!childEncoders.includes(encoder)) throw new Error(`tokens-child: unknown encoder ${String(encoder)}`);
  const probe = process.argv[3] === 'probe';
  const capMs = Number(process.argv[4] ?? 1_000);

  collect();
  const before = process.memoryUsage();
  let cpu = process.cpuUsage();
  let started = performance.now();
  const load = await importCode(encoder);
  const importMs = performance.now() - started;
  const importCpu = process.cpuUsage(cpu);
  collect();
  const imported = process.memoryUsage();
  cpu = process.cpuUsage();
  started = performance.now();
  const count = await load();
  count('Hello, world!');
  const firstCountMs = performance.now() - started;
  const firstCountCpu = process.cpuUsage(cpu);
  collect();
  const loaded = process.memoryUsage();
  await send({
    type: 'load',
    importMs,
    firstCountMs,
    importCpuMs: (importCpu.user + importCpu.system) / 1000,
    firstCountCpuMs: (firstCountCpu.user + firstCountCpu.system) / 1000,
    memory: [before, imported, loaded],
  });

  if (probe) {
    // Warm the merge loop up on other characters, so the first lengths do not time the JIT.
    count('x'.repeat(200));
    count('丙'.repeat(200));
    for (const input of probeInputs) {
      let last: { chars: number; ms: number } | undefined;
      for (const chars of probeLengths) {
        // At least quadratic in the piece's length: skip what would pass the cap.
        if (last && last.ms * (chars / last.chars) ** 2 > capMs) break;
        const text = input.repeat(chars);
        await send({ type: 'start', input, chars });
        // One run: a second run of the same text would hit gpt-tokenizer's merge cache.
        const begin = performance.now();
        const tokens = count(text);
        const ms = performance.now() - begin;
        await send({ type: 'probe', input, chars, ms, tokens });
        last = { chars, ms };
        if (ms > capMs) break;
      }
    }
  }
  await send({ type: 'done' });
}

main().then(
  () => process.disconnect?.(),
  (error: unknown) => {
    console.error(error);
    process.exitCode = 1;
    process.disconnect?.();
  },
);
