// The quick example of packages/breaker/README.md, type-checked in CI.
import { apiKey, baseUrl, log, messages, metrics, pager, requests, tools } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { breaker } from '@sluice/breaker';
import { retry } from '@sluice/retry';
import { rateLimit } from '@sluice/ratelimit';

const transport = openAICompatible({ baseUrl: 'https://api.deepseek.com/v1', apiKey });
const circuit = breaker({ failures: 10, openMs: 30_000 });
const llm = createPipeline({ transport })
  .use(retry({ attempts: 3 }))
  .use(circuit) // inside retry, outside rateLimit
  .use(rateLimit({ rpm: 100 }));

llm.events.on('circuit-open', (e) => log.error(`${e.key} open for ${e.openMs} ms (${e.reason})`));
await circuit.state(`${transport.origin}|deepseek-v3.2`); // { state: 'closed', failures: 0, … }
