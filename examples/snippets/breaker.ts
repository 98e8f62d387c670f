// The quick example of packages/breaker/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { rateLimit } from '@sluice/ratelimit';

const transport = openAICompatible({
  baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.deepseek.com/v1',
  apiKey: process.env.OPENAI_API_KEY,
});
const circuit = breaker({ failures: 10, openMs: 30_000 });
const llm = createPipeline({ transport })
  .use(retry({ attempts: 3 }))
  .use(circuit) // inside retry, outside rateLimit
  .use(rateLimit({ rpm: 100 }));

llm.events.on('circuit-open', (e) => console.error(`${e.key} open for ${e.openMs} ms (${e.reason})`));

const reply = await llm.complete({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Hello' }] });
console.log(reply.choices[0]?.message.content);
console.log(await circuit.state(`${transport.origin}|deepseek-v3.2`)); // { state: 'closed', failures: 0, … }
await llm.close();
