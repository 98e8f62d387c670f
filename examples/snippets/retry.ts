// The quick example of packages/retry/README.md, type-checked in CI.
import { apiKey, baseUrl, log, messages, metrics, pager, requests, tools } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { retry } from '@sluice/retry';

const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) })
  .use(retry({ attempts: 3 }));

llm.events.on('retry', (e) => console.warn(`${e.code}: attempt ${e.attempt} in ${e.delayMs} ms`));

// 60 s for the whole call: every attempt, every wait, everything downstream.
const reply = await llm.complete({ model: 'deepseek-v3.2', messages }, { timeoutMs: 60_000 });
