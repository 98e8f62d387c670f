/**
 * Drives one client in one mode for a while, to profile it alone:
 *
 * ```sh
 * node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx --conditions=@sluice/source \
 *   bench/profile.ts pipeline stream 1 10
 * ```
 *
 * Arguments: client (`undici`, `openai`, `transport`, `pipeline`, `full`), mode (`complete`,
 * `stream`, `memory`), concurrency (default 1), seconds (default 10). The upstream
 * runs in its own process, so the profile holds only the client.
 *
 * Mode `memory` times nothing: it prints what a JSON call costs the garbage
 * collector, the figures that decide how much more CPU a call takes with
 * many others in flight than alone (each scavenge copies what every call in
 * flight holds, and the more a call allocates, the more scavenges it pays
 * for): promises made per call (20 calls at once), and bytes held per call while `concurrency`
 * calls (default 500) wait on an upstream that answers after 1.5 s.
 *
 * @module
 */
import { promiseHooks, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { type Client, clientFactories as coreClients, contentChunks, reply } from './clients.js';
import { fullPipeline } from './pipeline.bench.js';
import { fixed, measure } from './lib.js';
import { startUpstream } from './upstream-server.js';

/** The core clients, and the full recommended pipeline of `pipeline.bench.ts`. */
const clientFactories = { ...coreClients, full: fullPipeline };

async function main(): Promise<void> {
  const [clientName = 'pipeline', mode = 'complete', concurrency, seconds = '10'] = process.argv.slice(2);
  if (!(clientName in clientFactories)) throw new Error(`client must be one of ${Object.keys(clientFactories).join(', ')}`);
  if (mode === 'memory') return memory(clientName as keyof typeof clientFactories, Number(concurrency ?? 500));
  if (mode !== 'complete' && mode !== 'stream') throw new Error('mode must be complete, stream or memory');
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const client = clientFactories[clientName as keyof typeof clientFactories](upstream.url);
  try {
    const limits = { concurrency: Number(concurrency ?? 1), maxRequests: 10_000_000, maxMs: Number(seconds) * 1000 };
    const result = await measure(client[mode], limits);
    const busy = (await upstream.reset()).cpuUs / 1000 / result.elapsedMs;
    console.log(
      `${clientName} ${mode} c=${concurrency ?? 1}: ${result.requests} requests, ${fixed(result.rps, 0)} req/s, ` +
        `p50 ${fixed(result.p50Ms, 3)} ms, TTFC ${fixed(result.ttfcMs, 3)} ms, ${fixed(result.cpuUsPerRequest, 0)} µs CPU/req, ` +
        `upstream ${fixed(busy * 100, 0)}% busy`,
    );
  } finally {
    await client.close();
    await upstream.close();
  }
}

/** Promises per JSON call (20 at once); bytes held per call with `inFlight` calls waiting. */
async function memory(clientName: keyof typeof clientFactories, inFlight: number): Promise<void> {
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc') as () => void;
  const upstream = await startUpstream({ reply, chunks: contentChunks, latencyMs: 1_500 });
  const client: Client = clientFactories[clientName](upstream.url);
  const all = (count: number) => Promise.all(Array.from({ length: count }, () => client.complete(() => {})));
  try {
    // Warm: connections open, code compiled, state written once.
    await all(inFlight);
    let promises = 0;
    const stop = promiseHooks.onInit(() => promises++);
    const calls = 20;
    await all(calls);
    stop();
    gc();
    gc();
    const before = process.memoryUsage().heapUsed;
    const waiting = all(inFlight);
    await new Promise((resolve) => setTimeout(resolve, 700));
    gc();
    gc();
    const held = (process.memoryUsage().heapUsed - before) / inFlight;
    await waiting;
    console.log(`${clientName} memory: ${fixed(promises / calls, 1)} promises/call, ${fixed(held, 0)} B held per call with ${inFlight} in flight`);
  } finally {
    await client.close();
    await upstream.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
