// The quick example of packages/context/README.md, type-checked in CI.
import { apiKey, baseUrl, log, messages, metrics, pager, requests, tools } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { countMessages, countTokens, loadTokenizer, trimContext } from '@sluice/context';
import { budget, trackCost } from '@sluice/cost';

await loadTokenizer('gpt-4.1'); // optional: load the rank file at startup, not on the first request

countTokens('tiktoken is great!', 'gpt-4');           // { tokens: 6, approximate: false }
countMessages(messages, 'gpt-4.1', { tools });        // { tokens: …, approximate: true } (tools are estimated)
countTokens('Hello', 'claude-sonnet-4.5');            // { tokens: …, approximate: true }

const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) })
  .use(trackCost())
  .use(trimContext())                                  // window × 0.8 − max_completion_tokens
  .use(budget({ limitUsd: 50, period: 'day' }));

llm.events.on('context-trim', (e) => log.info(`${e.id}: dropped ${e.dropped} messages, ${e.tokensBefore} → ${e.tokensAfter} tokens`));
