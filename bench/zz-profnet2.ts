import { rawUndici, emptyPipeline, reply, contentChunks } from './clients.js';
import { fullPipeline } from './pipeline.bench.js';
import { measure } from './lib.js';
import { startUpstream } from './upstream-server.js';
import fs from 'node:fs';
const upstream = await startUpstream({ reply, chunks: contentChunks });
const clients = { undici: rawUndici(upstream.url), empty: emptyPipeline(upstream.url), full: fullPipeline(upstream.url) };
const conc = Number(process.env.ZZ_CONC ?? 64);
for (const c of Object.values(clients)) await measure(c.complete, { concurrency: conc, maxRequests: 100000, maxMs: 800 });
const { Session } = await import('node:inspector/promises');
const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 200 });
for (let round = 0; round < 5; round++) for (const [name, c] of Object.entries(clients)) {
  await s.post('Profiler.start');
  const r = await measure(c.complete, { concurrency: conc, maxRequests: 100000, maxMs: 1200 });
  const { profile } = (await s.post('Profiler.stop')) as any;
  console.log(round, name, 'rps', r.rps.toFixed(0), 'cpu µs/req', r.cpuUsPerRequest.toFixed(1));
  fs.writeFileSync(`/tmp/pn-${name}-${round}.cpuprofile`, JSON.stringify({ ...profile, requests: r.requests }));
  await upstream.reset();
}
for (const c of Object.values(clients)) await c.close(); await upstream.close();
