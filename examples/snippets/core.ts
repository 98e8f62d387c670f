// The quick example of packages/core/README.md, type-checked in CI.
import { apiKey, baseUrl, log, messages, metrics, pager, requests, tools } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';

const llm = createPipeline({
  transport: openAICompatible({ baseUrl: 'https://api.openai.com/v1', apiKey: process.env.OPENAI_API_KEY }),
});

const reply = await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hello' }] });
for await (const chunk of llm.stream({ model: 'gpt-4.1', messages })) process.stdout.write(chunk.choices[0]?.delta.content ?? '');
const results = await llm.batch(requests, { concurrency: 50 }); // [{ ok, index, value | error }]
