// The quick example of packages/otel/README.md, type-checked in CI and run
// against a mock upstream by readme-run.test.ts.
import { createPipeline, openAICompatible } from '@sluice/core';
import { otel } from '@sluice/otel';
import { retry } from '@sluice/retry';
import { breaker } from '@sluice/breaker';
import { BasicTracerProvider, ConsoleSpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';

// Your OpenTelemetry SDK as usual (without tracerProvider, otel() uses the
// global one); here the spans are printed.
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(new ConsoleSpanExporter())] });
const telemetry = otel({ tracerProvider });

const llm = createPipeline({
  transport: openAICompatible({
    baseUrl: process.env.OPENAI_BASE_URL ?? 'https://api.deepseek.com/v1',
    apiKey: process.env.OPENAI_API_KEY,
  }),
})
  .use(telemetry) // outermost: one `chat {model}` span per call
  .use(retry({ attempts: 3 }))
  .use(telemetry.attempt) // right after retry: one child span per attempt
  .use(breaker());

const reply = await llm.complete({ model: 'deepseek-v3.2', messages: [{ role: 'user', content: 'Hello' }] });
console.log(reply.choices[0]?.message.content);
await llm.close();
await tracerProvider.shutdown();
