// Untracked: old vs new core around an in-memory transport (CPU ns per call), interleaved.
import * as newCore from '../packages/core/src/index.js';
import * as oldCore from '../packages/core/.old/index.js';
import { median } from './lib.js';
import { request, streamRequest, contentChunks } from './clients.js';
const [rounds = '40', ms = '100'] = process.argv.slice(2);
const completion = { id: 'x', object: 'chat.completion', created: 0, model: 'gpt-4.1', choices: [{ index: 0, message: { role: 'assistant', content: 'hi' }, finish_reason: 'stop' }], usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 } };
const chunk = (c: string) => ({ id: 'x', object: 'chat.completion.chunk', created: 0, model: 'gpt-4.1', choices: [{ index: 0, delta: { content: c }, finish_reason: null }] });
const chunks = Array.from({ length: contentChunks + 2 }, (_, i) => chunk(`w${i} `));
const transport = { name: 'memory', origin: 'memory://x', async send(ctx: any) { if (ctx.stream) { ctx.chunks = (async function* () { yield* chunks; })(); return; } ctx.response = structuredClone(completion); ctx.usage = ctx.response.usage; } };
const mk = (core: any) => core.createPipeline({ transport }).use(async function listen(ctx: any, next: any) { ctx.onSettled(() => {}); await next(); });
const pipes = { old: mk(oldCore), new: mk(newCore) } as Record<string, any>;
let sink = 0;
const probes: Record<string, (p: any) => Promise<void>> = {
  complete: async (p) => { await p.complete(request); },
  stream: async (p) => { for await (const c of p.stream(streamRequest)) sink += c.choices.length; },
};
for (const [pname, probe] of Object.entries(probes)) {
  const res: Record<string, number[]> = { old: [], new: [] };
  for (let r = 0; r < +rounds + 2; r++) for (const name of r % 2 ? ['old', 'new'] : ['new', 'old']) {
    let calls = 0; const t0 = performance.now(); const c0 = process.cpuUsage();
    while (performance.now() - t0 < +ms) { for (let i = 0; i < 20; i++) await probe(pipes[name]); calls += 20; }
    const c = process.cpuUsage(c0); if (r >= 2) res[name]!.push(((c.user + c.system) * 1000) / calls);
  }
  console.log(`${pname}: old ${median(res.old!).toFixed(0)} ns new ${median(res.new!).toFixed(0)} ns new/old ${median(res.new!.map((v, i) => v / res.old![i]!)).toFixed(3)}`);
}
