// The quick example of packages/context/README.md, type-checked in CI and
// run against a mock upstream by readme-run.test.ts.
import { type ChatMessage, type ToolDefinition, createPipeline, openAICompatible } from '@sluice/core';
import { countMessages, countTokens, loadTokenizer, trimContext } from '@sluice/context';

await loadTokenizer('gpt-4.1'); // optional: load the rank file at startup, not on the first request

const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'What is a sluice gate?' },
];
const tools: ToolDefinition[] = [{
  type: 'function',
  function: { name: 'lookup', description: 'Look a term up', parameters: { type: 'object', properties: { term: { type: 'string' } } } },
}];

console.log(countTokens('tiktoken is great!', 'gpt-4'));   // { tokens: 6, approximate: false }
console.log(countMessages(messages, 'gpt-4.1', { tools })); // { tokens: …, approximate: true } (tools are estimated)
console.log(countTokens('Hello', 'claude-sonnet-4.5'));    // { tokens: …, approximate: true }

const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
    apiKey: process.env.OPENAI_API_KEY,
  }),
}).use(trimContext());                                     // window × 0.8 − max_completion_tokens

llm.events.on('context-trim', (e) => console.log(`${e.id}: dropped ${e.dropped} messages, ${e.tokensBefore} → ${e.tokensAfter} tokens`));

const reply = await llm.complete({ model: 'gpt-4.1', messages, max_completion_tokens: 200 });
console.log(reply.choices[0]?.message.content);
await llm.close();
