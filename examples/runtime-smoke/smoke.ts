/**
 * The runtime smoke program: the same code on Node, Bun and Deno, from
 * source and as an esbuild bundle for `--platform=neutral`. It completes,
 * streams and goes through retry + breaker + rateLimit + budget + trackCost
 * against the mock upstream whose URL is in `SLUICE_SMOKE_UPSTREAM` (the
 * driver, `run.ts`, starts it under Node and scripts a 503 first, so retry
 * runs). It prints one JSON line of what it saw and exits 0, or prints the
 * error and exits 1.
 */
import { loadTokenizer } from '@sluice/context';
import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { budget, trackCost } from '@sluice/cost';
import { rateLimit } from '@sluice/ratelimit';
import { retry } from '@sluice/retry';

interface Runtime {
  process?: { env: Record<string, string | undefined>; exitCode?: number; versions?: Record<string, string | undefined> };
  Deno?: { env: { get(name: string): string | undefined }; version: { deno: string }; exitCode: number };
  Bun?: { version: string };
}
const runtime = globalThis as Runtime;
const baseUrl = runtime.Deno?.env.get('SLUICE_SMOKE_UPSTREAM') ?? runtime.process?.env.SLUICE_SMOKE_UPSTREAM;
const name = runtime.Deno ? `deno ${runtime.Deno.version.deno}` : runtime.Bun ? `bun ${runtime.Bun.version}` : `node ${runtime.process?.versions?.node}`;

async function main(): Promise<void> {
  if (!baseUrl) throw new Error('set SLUICE_SMOKE_UPSTREAM to the mock upstream URL');
  // Where a runtime cannot load the rank file synchronously, this is the documented way.
  await loadTokenizer('gpt-4.1');
  const costs = trackCost();
  const events: string[] = [];
  const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey: 'sk-smoke' }) })
    .use(costs)
    .use(budget({ limits: [{ limitUsd: 5, period: 'day' }] }))
    .use(retry({ attempts: 3, backoff: () => 10 }))
    .use(breaker({ failures: 5, openMs: 30_000 }))
    .use(rateLimit({ rpm: 100, tpm: 200_000 }));
  llm.events.on('retry', () => events.push('retry'));
  llm.events.on('cost', () => events.push('cost'));

  const messages = [{ role: 'user' as const, content: 'Name three uses of a sluice gate.' }];
  const reply = await llm.complete({ model: 'gpt-4.1', messages });
  let streamed = '';
  for await (const chunk of llm.stream({ model: 'gpt-4.1', messages })) streamed += chunk.choices[0]?.delta.content ?? '';
  const spent = await costs.ledger.report({ since: 0, by: 'model' });
  await llm.close();
  console.log(
    JSON.stringify({
      runtime: name,
      complete: reply.choices[0]?.message.content,
      stream: streamed,
      events,
      costed: spent.requests,
      usd: spent.usd,
    }),
  );
}

main().catch((error: unknown) => {
  console.error(`${name}: ${error instanceof Error ? `${error.name} ${(error as { code?: string }).code ?? ''} ${error.message}` : String(error)}`);
  if (runtime.Deno) runtime.Deno.exitCode = 1;
  else if (runtime.process) runtime.process.exitCode = 1;
});
