// The quick example of packages/cost/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { trimContext } from '@sluice/context';
import { retry } from '@sluice/retry';
import { budget, formatCostTable, projectSpend, trackCost } from '@sluice/cost';

const costs = trackCost();                       // real cost of every call, into costs.ledger
const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
    apiKey: process.env.OPENAI_API_KEY,
  }),
})
  .use(costs)                                    // outermost: hears each call's final outcome
  .use(trimContext())                            // counts and trims the prompt
  .use(budget({                                  // prices the trimmed prompt, reserves the worst case
    limits: [
      { limitUsd: 50, period: 'day' },
      { key: { tag: 'tenant' }, limitUsd: 5, period: 'day' },
    ],
    onExceed: { downgradeTo: 'gpt-4.1-mini' },
  }))
  .use(retry({ attempts: 3 }));                  // one reservation covers every attempt

llm.events.on('cost', (e) => console.log(`$${e.usd.toFixed(6)} for ${e.model}`, e.tags));
llm.events.on('cost-anomaly', (e) => console.warn(`${e.metric} is ${e.ratio.toFixed(1)}x its baseline on ${e.model}`));
llm.events.on('budget-warning', (e) => console.warn(`${e.threshold * 100}% of the ${e.period} budget spent`, e));

const reply = await llm.complete(
  { model: 'gpt-4.1', messages: [{ role: 'user', content: 'Name three uses of a sluice gate.' }] },
  { tags: { tenant: 'acme' } },
);
console.log(reply.choices[0]?.message.content);

const week = await costs.ledger.report({ since: Date.now() - 7 * 86_400_000, by: 'model' });
console.log(formatCostTable(projectSpend(week)));
await llm.close();
