/**
 * @module @sluice/ai-sdk
 *
 * A sluice pipeline around any AI SDK language model: `sluiceMiddleware`
 * for `wrapLanguageModel`, over a pipeline ending in `languageModels()`.
 * For OpenAI-compatible providers, `toFetch` from `@sluice/core` is the
 * simpler road (`createOpenAI({ fetch: toFetch(llm) })`).
 */
export { sluiceMiddleware, type RunsCompletions } from './sluice-middleware.js';
export { languageModels } from './language-model-transport.js';
