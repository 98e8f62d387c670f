/**
 * Is what the full recommended pipeline adds to a call flat in the number
 * of calls in flight, and what does a larger young generation change?
 * (For information: the target, each middleware's own cost flat in calls
 * in flight, is judged per middleware by `pnpm bench budget`, part 2.)
 *
 * In process, against an in-memory transport that answers one event-loop
 * turn later (calls overlap as over a network): CPU per call of the full
 * pipeline minus the empty one, and the collector's pauses per call, at
 * concurrency 1, 64 and 512. Each figure comes from a fresh child
 * (`in-flight-child.ts`): at Node's default heap settings, and with
 * `--max-semi-space-size=32`, children alternated, medians over children.
 * Calls in flight hold their state while they wait; the young-generation
 * collector copies all of it at every scavenge, so past a few hundred in
 * flight the collector, not the middleware's own code, is most of the
 * cost. The flag is the application's to set (sluice never sets it); this
 * says what it buys.
 *
 * `BENCH_QUICK=1` runs one child per setting and fewer, shorter rounds.
 *
 * @module
 */
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import os from 'node:os';
import { fixed, median, quick, table } from './lib.js';
import type { InFlightFigure, InFlightMessage } from './in-flight-child.js';

/** Name to select this benchmark: `pnpm bench in-flight`. */
export const name = 'in-flight';
/** What it compares. */
export const description =
  'what the full pipeline adds per call at 1, 64 and 512 calls in flight (flat?), at default heap settings and with --max-semi-space-size=32';

const childPath = fileURLToPath(new URL('./in-flight-child.ts', import.meta.url));
const children = quick ? 1 : 3;
const settings = { default: [] as string[], 'semi-space 32 MB': ['--max-semi-space-size=32'] };

function runChild(flags: string[]): Promise<InFlightFigure[]> {
  return new Promise((resolve, reject) => {
    const child = fork(childPath, [], {
      execArgv: [...process.execArgv, ...flags],
      env: { ...process.env, ...(quick ? { BENCH_IN_FLIGHT_ROUNDS: '3', BENCH_IN_FLIGHT_MS: '120' } : {}) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let figures: InFlightFigure[] | undefined;
    child.on('message', (message: InFlightMessage) => {
      if (message.type === 'figures') figures = message.figures;
    });
    child.on('error', reject);
    child.on('exit', (code) => (figures ? resolve(figures) : reject(new Error(`in-flight child exited with ${code} before reporting`))));
  });
}

/**
 * Runs the benchmark and prints, per concurrency, what the six add per call
 * under each heap setting, and the verdict on flatness at the default.
 *
 * @throws when a child fails
 * @example
 * ```ts
 * await run();
 * ```
 */
export async function run(): Promise<void> {
  console.log(
    `in-flight: node ${process.version}, load average ${(os.loadavg()[0] ?? 0).toFixed(1)} on ${os.cpus().length} cores, ` +
      `${children} child(ren) per setting, alternated${quick ? ' (BENCH_QUICK)' : ''}\n`,
  );
  const runs = new Map<string, InFlightFigure[][]>();
  for (let index = 0; index < children; index++) {
    for (const [label, flags] of Object.entries(settings)) {
      const list = runs.get(label) ?? [];
      list.push(await runChild(flags));
      runs.set(label, list);
    }
  }
  const at = (label: string, concurrency: number, pick: (figure: InFlightFigure) => number) =>
    median((runs.get(label) ?? []).map((figures) => pick(figures.find((figure) => figure.concurrency === concurrency) as InFlightFigure)));
  const rows: string[][] = [['in flight', 'empty µs/call', 'six add µs (default)', 'of it GC pauses', 'six add µs (semi-space 32 MB)', 'of it GC pauses', '× default']];
  for (const concurrency of [1, 64, 512]) {
    const base = at('default', concurrency, (figure) => figure.addedUs);
    const tuned = at('semi-space 32 MB', concurrency, (figure) => figure.addedUs);
    rows.push([
      String(concurrency),
      fixed(at('default', concurrency, (figure) => figure.emptyUs), 1),
      fixed(base, 1),
      fixed(at('default', concurrency, (figure) => figure.addedGcUs), 1),
      fixed(tuned, 1),
      fixed(at('semi-space 32 MB', concurrency, (figure) => figure.addedGcUs), 1),
      fixed(tuned / base, 2),
    ]);
  }
  console.log(table(rows));
  const flat = at('default', 512, (figure) => figure.addedUs) / at('default', 1, (figure) => figure.addedUs);
  const flatTuned = at('semi-space 32 MB', 512, (figure) => figure.addedUs) / at('semi-space 32 MB', 1, (figure) => figure.addedUs);
  console.log(
    `\nmedians over children of medians over rounds; "× default" is the tuned figure over the default one\n` +
      `\n  the six together at 512 in flight against 1, default heap: ${fixed(flat, 2)}× (${flat <= 1.5 ? 'within' : 'over'} 1.5×; for information:` +
      `\n  issue 9's target is each middleware's own cost, which \`pnpm bench budget\` (part 2) measures and judges)` +
      `\n  the same with --max-semi-space-size=32: ${fixed(flatTuned, 2)}×`,
  );
}
