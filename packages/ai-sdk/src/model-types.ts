import type { LanguageModelMiddleware } from 'ai';

/*
 * The AI SDK's language-model types, reached through the middleware type
 * that `ai` exports, so this package needs `ai` alone (its provider types
 * package is not a dependency users install).
 */
type WrapGenerate = NonNullable<LanguageModelMiddleware['wrapGenerate']>;
type WrapStream = NonNullable<LanguageModelMiddleware['wrapStream']>;

/** What a model is called with. */
export type CallParams = Parameters<WrapGenerate>[0]['params'];
/** The model being wrapped. */
export type WrappedModel = Parameters<WrapGenerate>[0]['model'];
/** What `doGenerate` resolves to. */
export type GenerateResult = Awaited<ReturnType<Parameters<WrapGenerate>[0]['doGenerate']>>;
/** What `doStream` resolves to. */
export type StreamResult = Awaited<ReturnType<Parameters<WrapStream>[0]['doStream']>>;
/** One part of a model's stream. */
export type StreamPart = StreamResult['stream'] extends ReadableStream<infer P> ? P : never;
/** A model's token usage. */
export type ModelUsage = GenerateResult['usage'];
/** Why a model stopped. */
export type ModelFinishReason = GenerateResult['finishReason'];
