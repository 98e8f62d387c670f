import type { Attributes } from '@opentelemetry/api';
import type { ChatCompletionRequest, CompletionContext, Usage } from '@sluice/core';
import { ATTR } from './semconv.js';
import type { ResolvedOtelOptions } from './options.js';

/** Well-known `gen_ai.provider.name` values by API host. */
const PROVIDERS: ReadonlyArray<readonly [RegExp, string]> = [
  [/(^|\.)openai\.azure\.com$/, 'azure.ai.openai'],
  [/^api\.openai\.com$/, 'openai'],
  [/^api\.deepseek\.com$/, 'deepseek'],
  [/^api\.anthropic\.com$/, 'anthropic'],
  [/^api\.groq\.com$/, 'groq'],
  [/^api\.mistral\.ai$/, 'mistral_ai'],
  [/^api\.x\.ai$/, 'x_ai'],
  [/^api\.perplexity\.ai$/, 'perplexity'],
  [/^api\.moonshot\.(ai|cn)$/, 'moonshot_ai'],
  [/^generativelanguage\.googleapis\.com$/, 'gcp.gemini'],
  [/(^|\.)aiplatform\.googleapis\.com$/, 'gcp.vertex_ai'],
  [/(^|\.)bedrock-runtime\.[^.]+\.amazonaws\.com$/, 'aws.bedrock'],
];

/** Where the transport sends requests: host and port only, never the URL's credentials or path. */
export interface Server {
  address: string | undefined;
  port: number | undefined;
}

/**
 * The host and port of a transport origin.
 *
 * @param origin - the transport's base URL
 */
export function serverOf(origin: string): Server {
  try {
    const url = new URL(origin);
    const port = url.port === '' ? (url.protocol === 'https:' ? 443 : url.protocol === 'http:' ? 80 : undefined) : Number(url.port);
    // IPv6 hosts come bracketed from URL; the convention wants the bare address.
    return { address: url.hostname.replace(/^\[(.*)\]$/, '$1') || undefined, port };
  } catch {
    return { address: undefined, port: undefined };
  }
}

/**
 * The provider name for a host: a well-known value, else `openai`, the API
 * a sluice transport speaks.
 *
 * @param address - the server's host
 */
export function providerOf(address: string | undefined): string {
  if (address !== undefined) for (const [pattern, name] of PROVIDERS) if (pattern.test(address)) return name;
  return 'openai';
}

/** The attributes a call's span starts with, and its metrics share. */
export interface CallIdentity {
  operation: 'chat';
  provider: string;
  model: string;
  server: Server;
}

/**
 * The identity of a call, for span names, sampling and metric attributes.
 *
 * @param ctx - the call
 * @param options - the resolved options (the `provider` override)
 */
export function identityOf(ctx: CompletionContext, options: ResolvedOtelOptions): CallIdentity {
  const server = serverOf(ctx.transport.origin);
  return { operation: 'chat', provider: options.provider ?? providerOf(server.address), model: ctx.request.model, server };
}

/**
 * The attributes every signal of a call carries (the metrics' required and
 * conditionally required ones); set at span creation, as the conventions
 * ask, so samplers see them.
 *
 * @param identity - the call's identity
 * @param semconv - the version to emit
 */
export function baseAttributes(identity: CallIdentity, semconv: ResolvedOtelOptions['semconv']): Attributes {
  const attributes: Attributes = {
    [ATTR.operationName]: identity.operation,
    [semconv === 'latest' ? ATTR.providerName : ATTR.system]: identity.provider,
    [ATTR.requestModel]: identity.model,
  };
  if (identity.server.address !== undefined) {
    attributes[ATTR.serverAddress] = identity.server.address;
    if (identity.server.port !== undefined) attributes[ATTR.serverPort] = identity.server.port;
  }
  return attributes;
}

/** A request field that may be absent, null, or (unchecked with `validateRequests: false`) of another type. */
function numberField(request: ChatCompletionRequest, name: keyof ChatCompletionRequest): number | undefined {
  const value: unknown = request[name];
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

/**
 * The request's sampling settings as span attributes; never its messages
 * (see {@link inputMessages}, behind `captureContent`).
 *
 * @param request - what is sent
 * @param stream - whether the call streams
 * @param semconv - the version to emit
 */
export function requestAttributes(request: ChatCompletionRequest, stream: boolean, semconv: ResolvedOtelOptions['semconv']): Attributes {
  const attributes: Attributes = {};
  const maxTokens = numberField(request, 'max_completion_tokens') ?? numberField(request, 'max_tokens');
  if (maxTokens !== undefined) attributes[ATTR.requestMaxTokens] = maxTokens;
  const numbers = [
    ['temperature', ATTR.requestTemperature],
    ['top_p', ATTR.requestTopP],
    ['frequency_penalty', ATTR.requestFrequencyPenalty],
    ['presence_penalty', ATTR.requestPresencePenalty],
    ['seed', ATTR.requestSeed],
  ] as const;
  for (const [field, name] of numbers) {
    const value = numberField(request, field);
    if (value !== undefined) attributes[name] = value;
  }
  const n = numberField(request, 'n');
  if (n !== undefined && n !== 1) attributes[ATTR.requestChoiceCount] = n;
  const stop: unknown = request.stop;
  if (typeof stop === 'string') attributes[ATTR.requestStopSequences] = [stop];
  else if (Array.isArray(stop) && stop.every((entry) => typeof entry === 'string')) attributes[ATTR.requestStopSequences] = stop;
  const format = (request as { response_format?: { type?: unknown } }).response_format?.type;
  if (format === 'json_object' || format === 'json_schema') attributes[ATTR.outputType] = 'json';
  else if (format === 'text') attributes[ATTR.outputType] = 'text';
  if (semconv === 'latest' && stream) attributes[ATTR.requestStream] = true;
  return attributes;
}

/**
 * The usage attributes of a response.
 *
 * @param usage - what the upstream reported
 * @param semconv - the version to emit (cache and reasoning counts are newer than v1.36)
 */
export function usageAttributes(usage: Usage, semconv: ResolvedOtelOptions['semconv']): Attributes {
  const attributes: Attributes = {
    [ATTR.usageInputTokens]: usage.prompt_tokens,
    [ATTR.usageOutputTokens]: usage.completion_tokens,
  };
  if (semconv === 'latest') {
    const cached = usage.prompt_tokens_details?.cached_tokens;
    if (typeof cached === 'number') attributes[ATTR.usageCacheReadInputTokens] = cached;
    const reasoning = usage.completion_tokens_details?.reasoning_tokens;
    if (typeof reasoning === 'number') attributes[ATTR.usageReasoningOutputTokens] = reasoning;
  }
  return attributes;
}

/**
 * A low-cardinality name for what a call failed with: a sluice error's
 * stable `code` (`RATE_LIMITED`, `CIRCUIT_OPEN`, `TIMEOUT`), else the
 * error's class name, else `_OTHER`, the conventions' fallback.
 *
 * @param error - what the call failed with
 */
export function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && code !== '') return code;
    if (typeof name === 'string' && name !== '' && name !== 'Error') return name;
  }
  return '_OTHER';
}
