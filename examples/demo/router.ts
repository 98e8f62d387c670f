import { type ChatCompletionRequest, createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { router } from '@sluice/router';
import { mockUpstream } from '@sluice/testing';
import { heading } from './format.js';

const openMs = 1_000;
const ask = (n: number): ChatCompletionRequest => ({ model: 'gpt-4.1', messages: [{ role: 'user', content: `Question number ${n}` }] });

/**
 * A fallback during an outage: `gpt-4.1` is served by two deployments
 * (OpenAI and Azure, weighted 2:1) with `deepseek-v3.2` as its fallback,
 * each deployment behind its own breaker. Both gpt-4.1 deployments go
 * down; their calls move to DeepSeek at once, their circuits open and
 * they are passed over without a request; once they are back and their
 * circuits close, traffic returns. Runs in real time, about 2 s.
 */
export async function routerDemo(): Promise<void> {
  heading('Router: a fallback during an outage');
  const [openai, azure, deepseek] = await Promise.all([
    mockUpstream({ latencyMs: 20 }),
    mockUpstream({ latencyMs: 30 }),
    mockUpstream({ latencyMs: 15 }),
  ]);
  const routed = router({
    deployments: [
      { id: 'openai', model: 'gpt-4.1', weight: 2, transport: openAICompatible({ baseUrl: openai.url, apiKey: 'sk-demo' }) },
      { id: 'azure', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: azure.url, apiKey: 'sk-demo' }) },
      { id: 'deepseek', model: 'deepseek-v3.2', transport: openAICompatible({ baseUrl: deepseek.url, apiKey: 'sk-demo' }) },
    ],
    middleware: () => [breaker({ failures: 3, openMs })],
    fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] },
  });
  const llm = createPipeline({ transport: routed.transport }).use(routed);
  console.log("router({ gpt-4.1: openai (weight 2) + azure, then deepseek-v3.2 }), each deployment: breaker({ failures: 3, openMs: 1 s })");
  const started = performance.now();
  const line = (what: string, text: string) =>
    console.log(`   ${String(Math.round(performance.now() - started)).padStart(5)} ms  ${what.padEnd(16)} ${text}`);
  llm.events.on('route-fallback', (e) => line('route-fallback', `${e.deployment} failed (${e.code}), moving on`));
  const names = new Map([[openai.url, 'openai'], [azure.url, 'azure'], [deepseek.url, 'deepseek']]);
  const deployment = (key: string) => names.get(key.split('|')[0] ?? '') ?? key;
  llm.events.on('circuit-open', (e) => line('circuit-open', `${deployment(e.key)}, open for ${e.openMs} ms`));
  llm.events.on('circuit-close', (e) => line('circuit-close', `${deployment(e.key)} (${e.reason})`));

  /** Runs `count` calls one after another and prints who answered them. */
  const round = async (label: string, from: number, count: number) => {
    const answered = new Map<string, number>();
    let failed = 0;
    for (let n = from; n < from + count; n++) {
      const ctx = await llm.run(ask(n)).catch(() => undefined);
      if (!ctx) failed++;
      else answered.set(ctx.state.router?.deployment ?? '?', (answered.get(ctx.state.router?.deployment ?? '?') ?? 0) + 1);
    }
    const who = [...answered].map(([id, n]) => `${id} ${n}`).join(', ');
    console.log(`   ${label}: ${count} calls, ${failed} failed; answered by ${who}`);
  };
  try {
    await round('healthy', 1, 9);
    const before = openai.requests.length + azure.requests.length;
    for (const down of [openai, azure]) down.enqueue(...Array.from({ length: 50 }, () => ({ kind: 'status' as const, status: 503 })));
    console.log('   -- openai and azure go down: every request gets a 503');
    await round('outage', 10, 12);
    const sent = openai.requests.length + azure.requests.length - before;
    console.log(`   the gpt-4.1 deployments saw ${sent} requests in the outage; their open circuits turned the rest away without a request`);
    openai.reset();
    azure.reset();
    console.log(`   -- both recover; after ${openMs} ms their circuits let a probe through`);
    await new Promise((resolve) => setTimeout(resolve, openMs + 50));
    await round('recovered', 30, 9);
  } finally {
    await llm.close();
    await Promise.all([openai.close(), azure.close(), deepseek.close()]);
  }
}
