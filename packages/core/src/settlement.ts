import type { CompletionContext, SettleListener, Settlement } from './context.js';
import { AbortError, toSluiceError } from './errors.js';
import type { ChatCompletionChunk } from './schemas.js';

/**
 * The listeners waiting for one response (or for the whole call) to be
 * completely done. Settles once; a listener added afterwards runs at once.
 * Every listener's promise is handed to `track` so the call does not
 * resolve before async listeners (a ledger write, say) have finished.
 */
export class SettleScope {
  private listeners: SettleListener[] = [];
  settled: Settlement | undefined;

  constructor(private readonly run: (listener: SettleListener, settlement: Settlement) => Promise<void>) {}

  add(listener: SettleListener): Promise<void> | undefined {
    if (this.settled) return this.run(listener, this.settled);
    this.listeners.push(listener);
    return undefined;
  }

  settle(settlement: Settlement): Promise<void> {
    if (this.settled) return Promise.resolve();
    this.settled = settlement;
    const listeners = this.listeners;
    this.listeners = [];
    return Promise.all(listeners.map((listener) => this.run(listener, settlement))).then(() => {});
  }
}

/** The text a chunk carries, for costing streams cut before their usage arrived. */
export function chunkText(chunk: ChatCompletionChunk): string {
  let text = '';
  for (const choice of chunk.choices) {
    const { delta } = choice;
    if (delta.content) text += delta.content;
    if (delta.refusal) text += delta.refusal;
    if (delta.tool_calls) for (const call of delta.tool_calls) text += call.function?.arguments ?? '';
  }
  return text;
}

/**
 * Passes `source` through, calling `onDone` once when it ends (success), throws
 * (error) or is stopped early by its consumer (cancelled).
 */
export async function* settleWhenDone(
  source: AsyncIterable<ChatCompletionChunk>,
  ctx: CompletionContext,
  startedAt: number,
  onDone: (settlement: Settlement) => Promise<void>,
): AsyncGenerator<ChatCompletionChunk, void, undefined> {
  let chunks = 0;
  let streamedText = '';
  let outcome: Settlement['outcome'] = 'cancelled';
  let error: Settlement['error'];
  try {
    for await (const chunk of source) {
      chunks++;
      streamedText += chunkText(chunk);
      yield chunk;
    }
    outcome = 'success';
  } catch (caught) {
    outcome = 'error';
    error = toSluiceError(caught);
    throw error;
  } finally {
    if (outcome === 'cancelled') {
      error = ctx.signal.aborted ? toSluiceError(ctx.signal.reason) : new AbortError('The stream was cancelled by its consumer');
    }
    await onDone({
      outcome,
      error,
      usage: ctx.usage,
      response: undefined,
      streamedText,
      chunks,
      stream: true,
      durationMs: ctx.clock.now() - startedAt,
    });
  }
}
