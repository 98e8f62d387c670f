/**
 * Drives one client in one mode for a while, to profile it alone:
 *
 * ```sh
 * node --cpu-prof --cpu-prof-dir=/tmp/prof --import tsx --conditions=@sluice/source \
 *   bench/profile.ts pipeline stream 1 10
 * ```
 *
 * Arguments: client (`undici`, `openai`, `transport`, `pipeline`, `full`), mode (`complete`,
 * `stream`), concurrency (default 1), seconds (default 10). The upstream
 * runs in its own process, so the profile holds only the client.
 *
 * @module
 */
import { clientFactories as coreClients, contentChunks, reply } from './clients.js';
import { fullPipeline } from './pipeline.bench.js';
import { fixed, measure } from './lib.js';
import { startUpstream } from './upstream-server.js';

/** The core clients, and the full recommended pipeline of `pipeline.bench.ts`. */
const clientFactories = { ...coreClients, full: fullPipeline };

async function main(): Promise<void> {
  const [clientName = 'pipeline', mode = 'complete', concurrency = '1', seconds = '10'] = process.argv.slice(2);
  if (!(clientName in clientFactories)) throw new Error(`client must be one of ${Object.keys(clientFactories).join(', ')}`);
  if (mode !== 'complete' && mode !== 'stream') throw new Error('mode must be complete or stream');
  const upstream = await startUpstream({ reply, chunks: contentChunks });
  const client = clientFactories[clientName as keyof typeof clientFactories](upstream.url);
  try {
    const limits = { concurrency: Number(concurrency), maxRequests: 10_000_000, maxMs: Number(seconds) * 1000 };
    const result = await measure(client[mode], limits);
    const busy = (await upstream.reset()).cpuUs / 1000 / result.elapsedMs;
    console.log(
      `${clientName} ${mode} c=${concurrency}: ${result.requests} requests, ${fixed(result.rps, 0)} req/s, ` +
        `p50 ${fixed(result.p50Ms, 3)} ms, TTFC ${fixed(result.ttfcMs, 3)} ms, ${fixed(result.cpuUsPerRequest, 0)} µs CPU/req, ` +
        `upstream ${fixed(busy * 100, 0)}% busy`,
    );
  } finally {
    await client.close();
    await upstream.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
