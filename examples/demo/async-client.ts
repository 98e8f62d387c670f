import { createPipeline, type Middleware, openAICompatible } from '@sluice/core';
import { mockUpstream } from '@sluice/testing';
import { heading, ms, percentile } from './format.js';

/** Records each call's latency, for the summary. */
function latency(into: number[]): Middleware {
  return async function latency(ctx, next) {
    const started = performance.now();
    ctx.onSettled(() => {
      into.push(performance.now() - started);
    });
    await next();
  };
}

/**
 * The original access layer's async client: 100 concurrent requests through
 * a capped batch over one keep-alive pool, one streamed answer, a summary.
 */
export async function asyncClient(): Promise<void> {
  heading('Async client: 100 requests, 20 at a time, one stream');
  const upstream = await mockUpstream({ seed: 7, latencyMs: 20, reply: 'Sluice keeps the pipes calm.' });
  const latencies: number[] = [];
  const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: 'sk-demo' }) }).use(
    latency(latencies),
  );
  try {
    const requests = Array.from({ length: 100 }, (_, i) => ({
      model: 'deepseek-v3.2',
      messages: [{ role: 'user' as const, content: `Question number ${i}` }],
    }));
    const started = performance.now();
    const results = await llm.batch(requests, { concurrency: 20 });
    const seconds = (performance.now() - started) / 1000;
    const ok = results.filter((r) => r.ok).length;
    console.log(`total time      ${ms(seconds * 1000)}`);
    console.log(`mean latency    ${ms(latencies.reduce((a, b) => a + b, 0) / latencies.length)}`);
    console.log(`p99 latency     ${ms(percentile(latencies, 99))}`);
    console.log(`success rate    ${((ok / results.length) * 100).toFixed(1)}%`);
    console.log(`throughput      ${(results.length / seconds).toFixed(0)} requests/s`);

    process.stdout.write('\nstreamed answer: ');
    for await (const chunk of llm.stream({
      model: 'deepseek-v3.2',
      messages: [{ role: 'user', content: 'Say something about rivers.' }],
    })) {
      process.stdout.write(chunk.choices[0]?.delta.content ?? '');
    }
    process.stdout.write('\n');
  } finally {
    await llm.close();
    await upstream.close();
  }
}
