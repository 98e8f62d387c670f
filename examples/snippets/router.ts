// The quick example of packages/router/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { trackCost } from '@sluice/cost';
import { router } from '@sluice/router';

const upstream = (baseUrl: string) => openAICompatible({ baseUrl: process.env.OPENAI_BASE_URL ?? baseUrl, apiKey: process.env.OPENAI_API_KEY });
const costs = trackCost();
const routed = router({
  deployments: [
    { id: 'openai', model: 'gpt-4.1', weight: 2, transport: upstream('https://api.openai.com/v1') },
    { id: 'azure', model: 'gpt-4.1', transport: upstream('https://example.openai.azure.com/openai/v1') },
    { id: 'deepseek', model: 'deepseek-v3.2', transport: upstream('https://api.deepseek.com/v1') },
  ],
  // Each deployment runs its own: its cost, its retries, its circuit.
  middleware: () => [costs, retry({ attempts: 2 }), breaker({ failures: 10, openMs: 30_000 })],
  fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] },
  hedge: { percentile: 0.95, ratio: 0.05 },
});
const llm = createPipeline({ transport: routed.transport }).use(routed);
llm.events.on('route-fallback', (e) => console.error(`${e.deployment} failed (${e.code}), moving on`));

const ctx = await llm.run({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'What are weirs for?' }] });
console.log(ctx.response?.choices[0]?.message.content);
console.error(`answered by ${ctx.state.router?.deployment}`); // 'openai', or wherever it had to go
const perDeployment = await costs.ledger.report({ by: { tag: 'deployment' } }); // every attempt, on every deployment
console.error(perDeployment.rows.map((row) => `${row.key}: $${row.usd.toFixed(6)}`).join(', '));
await llm.close();
