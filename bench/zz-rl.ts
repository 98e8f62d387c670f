import { createPipeline, memoryStore, type Middleware } from '@sluice/core';
import { rateLimit } from '@sluice/ratelimit';
import { request } from './clients.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
const inMemory = memoryTransport(memoryCompletion());
async function probe(keys: number, mw: () => Middleware | undefined) {
  const store = memoryStore();
  const m = mw();
  const llm = m ? createPipeline({ transport: inMemory, store }).use(m) : createPipeline({ transport: inMemory, store });
  let next = 0;
  const call = () => llm.complete(request, { tags: { tenant: `t${next++ % keys}` } });
  for (let i = Math.min(keys, 110_000); i > 0; i--) await call();
  return call;
}
const rl = () => rateLimit({ key: { tag: 'tenant' }, rpm: 1e12 }) as unknown as Middleware;
const probes: Array<[string, () => Promise<unknown>]> = [];
for (const [label, keys, mw] of [['empty', 10, () => undefined], ['rl 10', 10, rl], ['rl 1M', 1_000_000, rl]] as const) probes.push([label, await probe(keys, mw as never)]);
const samples = new Map<string, number[]>();
for (let r = 0; r < 7; r++) for (const [label, fn] of probes) {
  const before = process.cpuUsage(); const n = 30000; for (let i = 0; i < n; i++) await fn(); const c = process.cpuUsage(before);
  (samples.get(label) ?? samples.set(label, []).get(label)!).push((c.user + c.system) / n);
}
const med = (a: number[]) => [...a].sort((x, y) => x - y)[a.length >> 1]!;
const e = med(samples.get('empty')!);
for (const [label, s] of samples) console.log(label, med(s).toFixed(2), label === 'empty' ? '' : `+${(med(s) - e).toFixed(2)}`);
console.log('ratio 1M/10', ((med(samples.get('rl 1M')!) - e) / (med(samples.get('rl 10')!) - e)).toFixed(2));
