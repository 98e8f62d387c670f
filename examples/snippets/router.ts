// The quick example of packages/router/README.md, type-checked in CI.
import { apiKey, log, messages } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { trackCost } from '@sluice/cost';
import { router } from '@sluice/router';

const costs = trackCost();
const routed = router({
  deployments: [
    { id: 'openai', model: 'gpt-4.1', weight: 2, transport: openAICompatible({ baseUrl: 'https://api.openai.com/v1', apiKey }) },
    { id: 'azure', model: 'gpt-4.1', transport: openAICompatible({ baseUrl: 'https://example.openai.azure.com/openai/v1', apiKey }) },
    { id: 'deepseek', model: 'deepseek-v3.2', transport: openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey }) },
  ],
  // Each deployment runs its own: its circuit, its retries, its cost.
  middleware: () => [costs, retry({ attempts: 2 }), breaker({ failures: 10, openMs: 30_000 })],
  fallbacks: { 'gpt-4.1': ['deepseek-v3.2'] },
  hedge: { percentile: 0.95, ratio: 0.05 },
});
const llm = createPipeline({ transport: routed.transport }).use(routed);

const ctx = await llm.run({ model: 'gpt-4.1', messages });
log.info(`answered by ${ctx.state.router?.deployment}`); // 'openai', or wherever it had to go
llm.events.on('route-fallback', (e) => log.warn(`${e.deployment} failed (${e.code}), moving on`));
const perDeployment = await costs.ledger.report({ by: { tag: 'deployment' } }); // every attempt, on every deployment
log.info(perDeployment.rows.map((row) => `${row.key}: $${row.usd.toFixed(4)}`).join(', '));
