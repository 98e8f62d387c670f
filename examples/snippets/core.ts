// The quick example of packages/core/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';

const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.openai.com/v1',
    apiKey: process.env.OPENAI_API_KEY, // unset is an error here, not a 401 later
  }),
});

const reply = await llm.complete({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Hello' }] });
console.log(reply.choices[0]?.message.content);

for await (const chunk of llm.stream({ model: 'gpt-4.1', messages: [{ role: 'user', content: 'Tell me more' }] })) {
  process.stdout.write(chunk.choices[0]?.delta.content ?? '');
}

const questions = ['What is a sluice?', 'What is a weir?'];
const results = await llm.batch(
  questions.map((content) => ({ model: 'gpt-4.1', messages: [{ role: 'user' as const, content }] })),
  { concurrency: 50 },
); // one { ok, index, value | error } per request, in order
await llm.close();
