import { createPipeline, openAICompatible } from '@sluice/core';
import { cache } from '@sluice/cache';
import { costOfUsage, priceTable, trackCost } from '@sluice/cost';
import { mockUpstream } from '@sluice/testing';
import { heading, ms } from './format.js';

const questions = [
  'How do I reset my password?',
  'Which plans include SSO?',
  'Can I export my data as CSV?',
  'Where do I find my invoices?',
  'How do I add a team member?',
];

/**
 * The cache: a help desk asking the same few questions over and over (at
 * temperature 0, so the answers are meant to repeat). Each distinct
 * question goes upstream once, identical questions in flight share that
 * one request, every other call is answered from the cache at $0, and a
 * stored stream replays chunk for chunk with no wait for its first.
 */
export async function caching(): Promise<void> {
  heading('Cache: 200 help-desk questions, 5 distinct, 50 at a time');
  const upstream = await mockUpstream({
    latencyMs: 250,
    reply: { content: 'Open Settings, then Security, and follow the link we email you.', usage: { prompt_tokens: 1_800, completion_tokens: 400 } },
  });
  const prices = priceTable();
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-demo' }) })
    .use(trackCost({ prices }))
    .use(cache({ ttlMs: 3_600_000 }));
  let paidUsd = 0;
  let savedUsd = 0;
  const answered = { storage: 0, flight: 0 };
  const hits = new Set<string>();
  llm.events.on('cache-hit', (e) => {
    hits.add(e.id);
    answered[e.source]++;
    const entry = prices.lookup(e.model)?.entry;
    if (e.savedUsage && entry) savedUsd += costOfUsage(e.savedUsage, entry).usd;
  });
  // A hit is not billed: only the calls that went upstream were paid for.
  llm.events.on('cost', (e) => void (hits.has(e.id) ? undefined : (paidUsd += e.usd)));
  try {
    const requests = Array.from({ length: 200 }, (_, i) => ({
      model: 'gpt-4.1',
      temperature: 0,
      messages: [{ role: 'user' as const, content: questions[i % questions.length] as string }],
    }));
    const started = performance.now();
    const results = await llm.batch(requests, { concurrency: 50 });
    const failed = results.filter((result) => !result.ok).length;
    console.log(`  ${requests.length} calls in ${ms(performance.now() - started)}, ${failed} failed`);
    console.log(`  sent upstream                                 ${upstream.requests.length}`);
    console.log(`  shared with an identical call in flight       ${answered.flight}`);
    console.log(`  answered from the cache                       ${answered.storage}`);
    console.log(`  paid   $${paidUsd.toFixed(4)}  (gpt-4.1, 1,800 in / 400 out per answer)`);
    console.log(`  saved  $${savedUsd.toFixed(4)}  (${((savedUsd / (paidUsd + savedUsd)) * 100).toFixed(0)}% of what the 200 calls would have cost)`);

    heading('Cache: a stream replayed, chunk for chunk');
    const streamed = { model: 'gpt-4.1', temperature: 0, messages: [{ role: 'user' as const, content: 'Tell me about sluice gates' }] };
    for (const label of ['upstream', 'cache   ']) {
      const begin = performance.now();
      let first = 0;
      let chunks = 0;
      for await (const _chunk of llm.stream(streamed)) if (chunks++ === 0) first = performance.now() - begin;
      console.log(`  ${label}  first chunk after ${ms(first)}, ${chunks} chunks`);
    }
  } finally {
    await llm.close();
    await upstream.close();
  }
}
