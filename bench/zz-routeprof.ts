import { createPipeline, type Middleware, type Pipeline } from '@sluice/core';
import { retry } from '@sluice/retry';
import { breaker } from '@sluice/breaker';
import { router } from '@sluice/router';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
const ask = (index: number) => ({ model: 'gpt-4.1', messages: [{ role: 'user' as const, content: `call ${index}` }], max_tokens: 32 });
import fs from 'node:fs';
const resilience = (): Middleware[] => [retry({ attempts: 2, backoff: { baseMs: 5, maxMs: 20 } }), breaker({ failures: 5, openMs: 2_000 })];
const transport = memoryTransport(memoryCompletion(), { overlap: true });
const without = createPipeline({ transport }); for (const m of resilience()) without.use(m);
const route = router({ deployments: [{ id: 'only', model: 'gpt-4.1', transport }], middleware: resilience });
const routed = createPipeline({ transport: route.transport }).use(route);
const request = ask(0);
async function cpu(llm: Pipeline, ms: number) { let calls = 0; const started = performance.now(); const before = process.cpuUsage();
  await Promise.all(Array.from({ length: 64 }, async () => { while (performance.now() - started < ms) for (let b = 0; b < 20; b++, calls++) await llm.complete(request); }));
  const c = process.cpuUsage(before); return [(c.user + c.system) / calls, calls] as const; }
const { Session } = await import('node:inspector/promises');
const s = new Session(); s.connect(); await s.post('Profiler.enable'); await s.post('Profiler.setSamplingInterval', { interval: 100 });
await cpu(without, 500); await cpu(routed, 500);
for (let r = 0; r < 3; r++) for (const [name, llm] of [['without', without], ['routed', routed]] as const) {
  await s.post('Profiler.start'); const [us, calls] = await cpu(llm, 1000); const { profile } = (await s.post('Profiler.stop')) as any;
  console.log(name, us.toFixed(2)); fs.writeFileSync(`/tmp/rp-${name}-${r}.cpuprofile`, JSON.stringify({ ...profile, requests: calls }));
}
