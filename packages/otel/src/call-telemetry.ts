import { type Attributes, context, INVALID_SPAN_CONTEXT, type Span, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import type { ChatCompletionChunk, CompletionContext, Settlement } from '@sluice/core';
import {
  baseAttributes,
  type CallIdentity,
  errorType,
  identityOf,
  requestAttributes,
  usageAttributes,
} from './attributes.js';
import { inputMessages, outputMessages, type StreamedChoice, streamedMessages } from './content.js';
import type { Instruments } from './instruments.js';
import type { ResolvedOtelOptions } from './options.js';
import { ATTR } from './semconv.js';

/**
 * One call's telemetry: its `chat {model}` span, the span of the attempt in
 * flight (when the attempt instrument is in the pipeline), what a stream
 * told us as it went by, and the metrics recorded when the call settles.
 */
export class CallTelemetry {
  readonly span: Span;
  private readonly identity: CallIdentity;
  private readonly startedAt: number;
  private attemptSpan: Span | undefined;
  private attempts = 0;
  private firstChunkAt: number | undefined;
  private lastChunkAt: number | undefined;
  private responseId: string | undefined;
  private responseModel: string | undefined;
  private readonly finishReasons = new Map<number, string>();
  private readonly streamed = new Map<number, StreamedChoice>();
  /** A stream's metric attributes, made once at its first chunk rather than at every chunk. */
  private chunkAttributes: Attributes | undefined;

  constructor(
    private readonly ctx: CompletionContext,
    private readonly tracer: Tracer,
    private readonly instruments: Instruments,
    private readonly options: ResolvedOtelOptions,
  ) {
    this.identity = identityOf(ctx, options);
    this.startedAt = ctx.clock.now();
    const attributes: Attributes = {
      ...baseAttributes(this.identity, options.semconv),
      ...requestAttributes(ctx.request, ctx.stream, options.semconv),
      'sluice.call.id': ctx.id,
    };
    if (options.captureContent) attributes[ATTR.inputMessages] = inputMessages(ctx.request.messages);
    this.span = this.startSpan(() => tracer.startSpan(`chat ${this.identity.model}`, { kind: SpanKind.CLIENT, attributes, startTime: at(this.startedAt) }));
  }

  /**
   * A call into the OpenTelemetry SDK on the call's own path threw (opening
   * or closing a span, recording a chunk's timing). The API never throws,
   * but an SDK, a processor or an exporter the user plugged in may: such a
   * throw is a `listener-error` event (`event: 'otel'`), never the call's
   * error, as a throwing event listener is. Telemetry must not fail a call.
   */
  private sdkFailed(error: unknown): void {
    this.ctx.events.emit('listener-error', { id: this.ctx.id, event: 'otel', error });
  }

  /** A span from `start`, or, when the SDK throws, a span that records nothing. */
  private startSpan(start: () => Span): Span {
    try {
      return start();
    } catch (error) {
      this.sdkFailed(error);
      return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
    }
  }

  /** Runs `next` with the call's span (or its attempt's) as the active one, so spans below nest. */
  withSpan<T>(span: Span, run: () => Promise<T>): Promise<T> {
    return context.with(trace.setSpan(context.active(), span), run);
  }

  /** Where a decision taken now is recorded: the attempt in flight, else the call. */
  current(): Span {
    return this.attemptSpan ?? this.span;
  }

  /**
   * Records a sluice event as a span event, on the attempt in flight if
   * any: retry decisions are taken between attempts, so they land on the
   * call's span.
   */
  event(name: string, attributes: Attributes): void {
    this.current().addEvent(name, attributes, at(this.ctx.clock.now()));
  }

  /** The middleware that answered the call itself (`'cache'`), if one did. */
  private answeredBy(): string | undefined {
    const by = this.ctx.state.answeredBy;
    return typeof by === 'string' ? by : undefined;
  }

  /** The circuit the call's latest attempt went through, if a breaker said so. */
  circuitKey(): string | undefined {
    const key = (this.ctx.state as { breaker?: { key?: unknown } }).breaker?.key;
    return typeof key === 'string' ? key : undefined;
  }

  /**
   * Opens the span of the next attempt, a child of the call's.
   *
   * @param reentered - the call's own pass was its first attempt (the call instrument sits inside retry)
   */
  startAttempt(reentered = false): Span {
    if (reentered && this.attempts === 0) this.attempts = 1;
    this.attempts += 1;
    const parent = trace.setSpan(context.active(), this.span);
    const span = this.startSpan(() =>
      this.tracer.startSpan(
        'sluice.attempt',
        {
          kind: SpanKind.INTERNAL,
          attributes: { 'sluice.attempt': this.attempts, [ATTR.requestModel]: this.ctx.request.model },
          startTime: at(this.ctx.clock.now()),
        },
        parent,
      ),
    );
    this.attemptSpan = span;
    return span;
  }

  /** Closes an attempt's span with how it ended. */
  endAttempt(span: Span, error: unknown): void {
    if (this.attemptSpan === span) this.attemptSpan = undefined;
    try {
      const breaker = (this.ctx.state as { breaker?: { key?: unknown; state?: unknown } }).breaker;
      if (typeof breaker?.key === 'string') span.setAttribute('sluice.circuit.key', breaker.key);
      if (typeof breaker?.state === 'string') span.setAttribute('sluice.circuit.state', breaker.state);
      if (error !== undefined) fail(span, error);
      span.end(at(this.ctx.clock.now()));
    } catch (thrown) {
      this.sdkFailed(thrown);
    }
  }

  /** Passes a stream through, timing its chunks and noting its id, model and finish reasons. */
  watch(chunks: AsyncIterable<ChatCompletionChunk>): AsyncIterable<ChatCompletionChunk> {
    const source = chunks;
    // No closure per chunk: this runs on every chunk of every stream.
    const seen = (chunk: ChatCompletionChunk) => {
      try {
        this.chunk(chunk);
      } catch (error) {
        this.sdkFailed(error);
      }
    };
    return {
      [Symbol.asyncIterator]() {
        const iterator = source[Symbol.asyncIterator]();
        return {
          async next() {
            const result = await iterator.next();
            if (!result.done) seen(result.value);
            return result;
          },
          async return(value?: unknown) {
            return (await iterator.return?.(value)) ?? { done: true, value: undefined };
          },
          async throw(error?: unknown) {
            if (iterator.throw) return iterator.throw(error);
            throw error;
          },
        };
      },
    };
  }

  private chunk(chunk: ChatCompletionChunk): void {
    const now = this.ctx.clock.now();
    this.responseId ??= chunk.id || undefined;
    this.responseModel ??= chunk.model || undefined;
    if (this.firstChunkAt === undefined) {
      this.firstChunkAt = now;
      this.chunkAttributes = this.metricAttributes();
      // Never negative, should the clock step back during the call (a histogram refuses it).
      this.instruments.timeToFirstChunk.record(Math.max(0, now - this.startedAt) / 1000, this.chunkAttributes);
    } else if (this.lastChunkAt !== undefined) {
      this.instruments.timePerOutputChunk.record(Math.max(0, now - this.lastChunkAt) / 1000, this.chunkAttributes);
    }
    this.lastChunkAt = now;
    for (const choice of chunk.choices) {
      if (choice.finish_reason) this.finishReasons.set(choice.index, choice.finish_reason);
      if (this.options.captureContent) {
        const entry = this.streamed.get(choice.index) ?? { text: '', finishReason: undefined };
        entry.text += choice.delta.content ?? '';
        entry.finishReason = choice.finish_reason ?? entry.finishReason;
        this.streamed.set(choice.index, entry);
      }
    }
  }

  /** Ends the call's span and records its metrics, once the call settled. */
  finish(settlement: Settlement): void {
    const now = this.ctx.clock.now();
    const { span, options } = this;
    // The model actually sent (a budget may have downgraded it on the way in).
    this.identity.model = this.ctx.request.model;
    const response = settlement.response;
    if (response) {
      this.responseId = response.id || undefined;
      this.responseModel = response.model || undefined;
      for (const choice of response.choices) if (choice.finish_reason) this.finishReasons.set(choice.index, choice.finish_reason);
    }
    const attributes: Attributes = { [ATTR.requestModel]: this.identity.model, 'sluice.outcome': settlement.outcome };
    if (this.attempts > 0) attributes['sluice.attempts'] = this.attempts;
    if (this.responseId !== undefined) attributes[ATTR.responseId] = this.responseId;
    if (this.responseModel !== undefined) attributes[ATTR.responseModel] = this.responseModel;
    if (this.finishReasons.size > 0) {
      attributes[ATTR.responseFinishReasons] = [...this.finishReasons.entries()].sort(([a], [b]) => a - b).map(([, reason]) => reason);
    }
    // A call a middleware answered itself (a cache hit) billed nothing: its
    // usage is what the answer once cost, and the conventions count billed tokens.
    const answeredBy = this.answeredBy();
    if (answeredBy !== undefined) attributes['sluice.answered_by'] = answeredBy;
    else if (settlement.usage) Object.assign(attributes, usageAttributes(settlement.usage, options.semconv));
    if (options.semconv === 'latest' && this.firstChunkAt !== undefined) {
      attributes[ATTR.responseTimeToFirstChunk] = Math.max(0, this.firstChunkAt - this.startedAt) / 1000;
    }
    if (options.captureContent) {
      if (response) attributes[ATTR.outputMessages] = outputMessages(response.choices);
      else if (this.streamed.size > 0) attributes[ATTR.outputMessages] = streamedMessages(this.streamed);
    }
    span.setAttributes(attributes);
    const failed = settlement.outcome === 'error' ? settlement.error : undefined;
    if (failed !== undefined) fail(span, failed);
    span.end(at(now));
    this.record(settlement, now, failed);
  }

  private record(settlement: Settlement, now: number, failed: unknown): void {
    const attributes = this.metricAttributes();
    const { instruments } = this;
    instruments.operationDuration.record(
      Math.max(0, now - this.startedAt) / 1000,
      failed === undefined ? attributes : { ...attributes, [ATTR.errorType]: errorType(failed) },
    );
    const { usage } = settlement;
    if (usage && this.answeredBy() === undefined) {
      instruments.tokenUsage.record(usage.prompt_tokens, { ...attributes, [ATTR.tokenType]: 'input' });
      instruments.tokenUsage.record(usage.completion_tokens, { ...attributes, [ATTR.tokenType]: 'output' });
    }
    const limiter = (this.ctx.state as { ratelimit?: { waitedMs?: unknown } }).ratelimit;
    if (typeof limiter?.waitedMs === 'number' && Number.isFinite(limiter.waitedMs)) {
      instruments.limitWait.record(limiter.waitedMs / 1000, this.metricAttributes(false));
    }
  }

  /** The attributes of the call's metric points: its identity, with the response model once known. */
  metricAttributes(withResponse = true): Attributes {
    const attributes = baseAttributes(this.identity, this.options.semconv);
    if (withResponse && this.responseModel !== undefined) attributes[ATTR.responseModel] = this.responseModel;
    return attributes;
  }
}

/**
 * A clock reading as a span time. A `Date`, not a number: an SDK reads a
 * small number as a `performance.now()` offset, and an injected clock may
 * well be set in the past.
 */
function at(ms: number): Date {
  return new Date(ms);
}

/** Marks a span failed, the way the conventions record errors: `error.type` and an error status. */
function fail(span: Span, error: unknown): void {
  span.setAttribute(ATTR.errorType, errorType(error));
  // sluice errors never carry a key or an Authorization header (core's contract).
  const message = error instanceof Error ? error.message : undefined;
  span.setStatus({ code: SpanStatusCode.ERROR, ...(message !== undefined && { message }) });
}
