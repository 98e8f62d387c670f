import { createPipeline, type ChatMessage, memoryStore, openAICompatible } from '@sluice/core';
import { trimContext } from '@sluice/context';
import { budget, compareModels, formatCostTable, originalPrices, trackCost } from '@sluice/cost';
import { mockUpstream } from '@sluice/testing';
import { heading } from './format.js';

const sentence = 'The river carried the spring rain down from the hills and past the old mill. ';

/** A support chat whose history the application forgot to bound. */
function history(turns: number): ChatMessage[] {
  const messages: ChatMessage[] = [{ role: 'system', content: 'You are a helpful support agent.' }];
  for (let i = 0; i < turns; i++) {
    messages.push({ role: 'user', content: `Question ${i}: ${sentence.repeat(3)}` });
    messages.push({ role: 'assistant', content: `Answer ${i}: ${sentence.repeat(3)}` });
  }
  messages.push({ role: 'user', content: 'And one more thing?' });
  return messages;
}

/**
 * Tokens and money: the original model comparison, then the incident this
 * project exists to prevent (history growing without bound) caught by the
 * anomaly alert and the budget, and prevented by trimContext.
 */
export async function cost(): Promise<void> {
  heading('Cost: the original comparison (10,000 requests a day, 3,000 in / 800 out)');
  const workload = { requestsPerDay: 10_000, inputTokens: 3_000, outputTokens: 800 };
  console.log('at the original write-up prices:');
  console.log(formatCostTable(compareModels({ ...workload, prices: originalPrices })));
  console.log('\nat the list prices sluice ships (source and date per price in @sluice/cost):');
  console.log(
    formatCostTable(
      compareModels({ ...workload, models: ['gpt-4.1', 'claude-sonnet-4.5', 'gemini-2.5-flash', 'deepseek-v3.2'] }),
    ),
  );

  heading('Cost: history growing without bound, caught in minutes instead of on the bill');
  const upstream = await mockUpstream({ reply: 'Happy to help with that.' });
  const costs = trackCost({ anomaly: { warmupRequests: 10 } });
  // Both pipelines keep budget and ledger state in one store, so the ledger reports them together.
  const store = memoryStore();
  const unbounded = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-demo' }), store })
    .use(costs)
    .use(budget({ limitUsd: 0.1, period: 'day', warnAt: [0.5, 0.8], onExceed: 'reject' }));
  const figure = (metric: string, value: number) => (metric.startsWith('usd') ? `$${value.toFixed(5)}` : `${Math.round(value)}`);
  unbounded.events.on('cost-anomaly', (e) =>
    console.log(
      `  anomaly       ${e.metric} is ${e.ratio.toFixed(0)}x its baseline (${figure(e.metric, e.value)} vs ${figure(e.metric, e.baseline)}) on ${e.model}`,
    ),
  );
  unbounded.events.on('budget-warning', (e) =>
    console.log(`  budget        ${Math.round(e.threshold * 100)}% of the $${e.limitUsd} ${e.period} budget spent ($${e.spentUsd.toFixed(4)})`),
  );
  const ask = (messages: ChatMessage[]) =>
    unbounded.complete({ model: 'gpt-4.1', messages, max_completion_tokens: 200 }, { tags: { tenant: 'acme' } });

  for (let i = 0; i < 15; i++) await ask(history(1));
  console.log(`  15 ordinary requests of about ${Math.round(((await costs.ledger.report({ by: 'total' })).rows[0]?.uncachedInputTokens ?? 0) / 15)} prompt tokens each`);
  console.log('  …then a conversation whose history was never trimmed (47x the usual prompt):');
  let refused = 0;
  for (let i = 0; i < 12; i++) await ask(history(47)).catch(() => refused++);
  console.log(`  ${refused} of those 12 refused by the budget before reaching the upstream`);

  heading('Cost: the same conversation through trimContext');
  const trimmed = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-demo' }), store })
    .use(costs)
    .use(trimContext({ maxTokens: 600 }));
  trimmed.events.on('context-trim', (e) =>
    console.log(`  context-trim  ${e.tokensBefore} → ${e.tokensAfter} tokens, ${e.dropped} messages dropped (budget ${e.budget})`),
  );
  await trimmed.complete({ model: 'gpt-4.1', messages: history(47), max_completion_tokens: 200 });

  heading("Cost: this run's own spend, from the ledger");
  const report = await costs.ledger.report({ by: 'model' });
  for (const row of report.rows) {
    console.log(
      `  ${row.key.padEnd(10)} ${row.requests} requests, ${row.uncachedInputTokens + row.cachedInputTokens} in / ${row.outputTokens} out, $${row.usd.toFixed(4)}`,
    );
  }
  await unbounded.close();
  await trimmed.close();
  await upstream.close();
}
