// Untracked A/B driver: old core snapshot vs working core vs raw undici, fine-grained interleaving.
import * as newCore from '../packages/core/src/index.js';
import * as oldCore from '../packages/core/.old/index.js';
import { pipelineClient, rawUndici, contentChunks, reply, type Client } from './clients.js';
import { measure, median } from './lib.js';
import { startUpstream } from './upstream-server.js';
const [mode = 'complete', conc = '64', rounds = '30', ms = '150'] = process.argv.slice(2);
const upstream = await startUpstream({ reply, chunks: contentChunks });
const mk = (name: string, core: typeof newCore) =>
  pipelineClient(name, core.createPipeline({ transport: core.openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-bench' }) }) as never);
const clients: Client[] = [rawUndici(upstream.url), mk('old', oldCore as never), mk('new', newCore)];
const cpu: Record<string, number[]> = {}; const ttfc: Record<string, number[]> = {};
for (let r = 0; r < +rounds + 2; r++) {
  for (const c of r % 2 ? clients : [...clients].reverse()) {
    const res = await measure(mode === 'stream' ? c.stream : c.complete, { concurrency: +conc, maxRequests: 1e6, maxMs: +ms });
    if (r < 2) continue;
    (cpu[c.name] ??= []).push(res.cpuUsPerRequest); (ttfc[c.name] ??= []).push(res.ttfcMs);
  }
}
const ratio = (a: number[], b: number[]) => median(a.map((v, i) => v / b[i]!));
console.log(`${mode} c=${conc}: cpu µs undici ${median(cpu.undici!).toFixed(0)} old ${median(cpu.old!).toFixed(0)} new ${median(cpu.new!).toFixed(0)} | old/undici ${ratio(cpu.old!, cpu.undici!).toFixed(3)} new/undici ${ratio(cpu.new!, cpu.undici!).toFixed(3)} new/old ${ratio(cpu.new!, cpu.old!).toFixed(3)}` +
  (mode === 'stream' ? ` | ttfc old/undici ${ratio(ttfc.old!, ttfc.undici!).toFixed(3)} new/undici ${ratio(ttfc.new!, ttfc.undici!).toFixed(3)} new/old ${ratio(ttfc.new!, ttfc.old!).toFixed(3)}` : ''));
await Promise.all(clients.map((c) => c.close())); await upstream.close();
