import { performance } from 'node:perf_hooks';
import { createPipeline, type Middleware, type Transport, type CompletionContext } from '@sluice/core';
import { streamRequest } from './clients.js';
import { median } from './lib.js';
import { memoryCompletion, memoryTransport } from './memory-transport.js';
import { recommended } from './pipeline.bench.js';
const inner = memoryTransport(memoryCompletion(), { overlap: true });
let sent = 0;
const transport: Transport = { name: 'm', origin: 'm', send(ctx: CompletionContext) { sent = performance.now(); return inner.send(ctx); } };
const names = (process.env.ZZ ?? 'empty,budget,full').split(',');
const stacks = names.map((n) => {
  const llm = createPipeline({ transport });
  for (const [x, m] of recommended) if (n === x || n === 'full') llm.use(m() as Middleware);
  return [n, llm] as const;
});
const thrashMb = Number(process.env.MB ?? 16);
const big = new Float64Array((thrashMb * 1024 * 1024) / 8);
let sink = 0;
const thrash = () => { for (let i = 0; i < big.length; i += 8) sink += big[i]!++; };
const pre = new Map(names.map((n) => [n, [] as number[]]));
const calls = Number(process.env.CALLS ?? 3000);
for (let i = 0; i < calls; i++) {
  for (const [n, llm] of stacks) {
    if (thrashMb > 0) thrash();
    const t0 = performance.now();
    for await (const _ of llm.stream(streamRequest)) {}
    if (i > calls / 10) pre.get(n)!.push(sent - t0);
  }
}
for (const n of names) console.log(n.padEnd(10), (median(pre.get(n)!) * 1000).toFixed(1), 'µs before send');
if (sink < 0) console.log(sink);
