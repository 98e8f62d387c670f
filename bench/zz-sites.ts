import { Session } from 'node:inspector/promises';
import { createPipeline, type Middleware } from '@sluice/core';
import { request, streamRequest } from './clients.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
import { recommended } from './pipeline.bench.js';

const which = process.argv[2] ?? 'breaker';
const stream = process.argv[3] === 'stream';
const depth = Number(process.argv[4] ?? 2);
const transport = memoryTransport(memoryCompletion());
const base = createPipeline({ transport });
const llm = createPipeline({ transport });
for (const [label, make] of recommended) if (which === 'all' || label === which) llm.use(make() as Middleware);
const callOf = (p: any) => async () => {
  if (!stream) await p.complete(request);
  else for await (const _ of p.stream(streamRequest));
};
async function sites(p: any) {
  const call = callOf(p);
  for (let i = 0; i < 3000; i++) await call();
  const session = new Session();
  session.connect();
  await session.post('HeapProfiler.startSampling', { samplingInterval: 32, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  const N = 10000;
  for (let i = 0; i < N; i++) await call();
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as any;
  session.disconnect();
  const byNode = new Map<number, any>();
  const visit = (n: any, stack: string[]) => { const f = n.callFrame; const here = `${f.functionName || '(anon)'} ${f.url.replace(/.*\/(packages|bench)\//, '$1/').replace('/dist/', '/')}:${f.lineNumber + 1}`; n.st = [...stack, here]; byNode.set(n.id, n); for (const c of n.children) visit(c, n.st); };
  visit(profile.head, []);
  const out = new Map<string, number>();
  for (const s of profile.samples) { const st = byNode.get(s.nodeId).st as string[]; if (st.at(-1)!.includes('bench/')) continue; const key = st.slice(-depth).join(' < '); out.set(key, (out.get(key) ?? 0) + s.size / N); }
  return out;
}
const a = await sites(base);
const b = await sites(llm);
const keys = new Set([...a.keys(), ...b.keys()]);
const diff = [...keys].map((k) => [k, (b.get(k) ?? 0) - (a.get(k) ?? 0)] as [string, number]).sort((x, y) => y[1] - x[1]);
let total = 0; for (const [, v] of diff) total += v;
console.log(which, stream ? 'stream' : 'json', 'added B/call', total.toFixed(0));
for (const [k, v] of diff.slice(0, 25)) if (Math.abs(v) >= 8) console.log(v.toFixed(0).padStart(6), k);
