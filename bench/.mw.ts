import { createPipeline } from '@sluice/core';
import { budget, trackCost } from '@sluice/cost';
import { breaker } from '@sluice/breaker';
import { request } from './clients.js';
const which = process.argv[2];
const completion = { id: 'x', object: 'chat.completion', created: 0, model: 'gpt-4.1', choices: [{ index: 0, message: { role: 'assistant', content: 'hi there' }, finish_reason: 'stop' }], usage: { prompt_tokens: 30, completion_tokens: 25, total_tokens: 55 } };
const llm = createPipeline({ transport: { name: 'm', origin: 'memory://x', async send(ctx: any) { ctx.response = completion; ctx.usage = completion.usage; } } });
llm.use((which === 'budget' ? budget({ limitUsd: 1e9, period: 'day' }) : which === 'breaker' ? breaker() : trackCost()) as never);
const t = performance.now(); let n = 0; const c0 = process.cpuUsage();
const marks: string[] = [];
while (performance.now() - t < 6000) { for (let i = 0; i < 100; i++) await llm.complete(request); n += 100; if (n % 20000 === 0) { const c = process.cpuUsage(c0); marks.push(`${n}:${((c.user + c.system) / n).toFixed(1)}`); } }
console.log(which, n, 'calls; cumulative µs/call at', marks.join(' '));
