/**
 * Runs the benchmarks in `bench/`: every `*.bench.ts`, or those named on
 * the command line (`pnpm bench core`). A benchmark module exports `name`,
 * `description` and `run()` (see {@link Bench}).
 *
 * @module
 */
import { readdir } from 'node:fs/promises';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { Bench } from './lib.js';

const directory = fileURLToPath(new URL('.', import.meta.url));

async function loadBenches(): Promise<Bench[]> {
  const files = (await readdir(directory)).filter((file) => file.endsWith('.bench.ts')).sort();
  const benches: Bench[] = [];
  for (const file of files) {
    const module = (await import(pathToFileURL(`${directory}${file}`).href)) as Partial<Bench>;
    if (typeof module.name !== 'string' || typeof module.run !== 'function') {
      throw new Error(`bench/${file} must export name (a string) and run() (an async function)`);
    }
    benches.push({ name: module.name, description: module.description ?? '', run: module.run });
  }
  return benches;
}

async function main(): Promise<void> {
  const benches = await loadBenches();
  const wanted = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
  const unknown = wanted.filter((name) => !benches.some((bench) => bench.name === name));
  if (unknown.length > 0) {
    throw new Error(`unknown benchmark ${unknown.join(', ')}; there are: ${benches.map((bench) => bench.name).join(', ')}`);
  }
  const selected = wanted.length === 0 ? benches : benches.filter((bench) => wanted.includes(bench.name));
  const started = performance.now();
  for (const bench of selected) {
    console.log(`\n== ${bench.name}: ${bench.description}\n`);
    await bench.run();
  }
  console.log(`\n${selected.length} benchmark(s) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
