import type { ChatCompletionChunk } from '@sluice/core';

/** What {@link drain} read from a stream. */
export interface Drained {
  /** Every chunk that arrived before the end or the error. */
  chunks: ChatCompletionChunk[];
  /** The content deltas of the first choice, joined. */
  text: string;
  /** What the stream ended with, or undefined when it ended cleanly. */
  error: unknown;
}

/**
 * Reads a stream to its end or its error, keeping what arrived before an
 * error instead of losing it, so a test can check both.
 *
 * @param stream - a pipeline's `stream(...)`
 * @example
 * ```ts
 * upstream.enqueue({ kind: 'cut', afterChunks: 3 });
 * const { text, error } = await drain(llm.stream(chat('Hi', { stream: true })));
 * expect(error).toMatchObject({ code: 'STREAM_CUT' });
 * ```
 */
export async function drain(stream: AsyncIterable<ChatCompletionChunk>): Promise<Drained> {
  const chunks: ChatCompletionChunk[] = [];
  let text = '';
  try {
    for await (const chunk of stream) {
      chunks.push(chunk);
      text += chunk.choices[0]?.delta?.content ?? '';
    }
  } catch (error: unknown) {
    return { chunks, text, error };
  }
  return { chunks, text, error: undefined };
}
