// The quick example of packages/otel/README.md, type-checked in CI.
import { apiKey, baseUrl, messages } from './declarations.js';

import { createPipeline, openAICompatible } from '@sluice/core';
import { otel } from '@sluice/otel';
import { retry } from '@sluice/retry';
import { breaker } from '@sluice/breaker';

// Spans and metrics go to the providers your OpenTelemetry SDK registered.
const telemetry = otel();

const llm = createPipeline({ transport: openAICompatible({ baseUrl, apiKey }) })
  .use(telemetry)              // outermost: one `chat {model}` span per call
  .use(retry({ attempts: 3 }))
  .use(telemetry.attempt)      // inside retry: one child span per attempt
  .use(breaker());

const reply = await llm.complete({ model: 'deepseek-v3.2', messages });
