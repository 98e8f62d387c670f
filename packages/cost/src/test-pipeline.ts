// Test helpers (not published: `files` excludes src/**/test-*.ts).
import type { ChatCompletionChunk, ChatMessage, SluiceEmitter, SluiceEvents } from '@sluice/core';

/** A short conversation. */
export const messages: ChatMessage[] = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: 'Tell me about sluice gates in one paragraph.' },
];

/** Reads a stream to its end or its error, keeping the text that arrived. */
export async function drain(stream: AsyncIterable<ChatCompletionChunk>): Promise<{ text: string; error: unknown }> {
  let text = '';
  try {
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  } catch (error: unknown) {
    return { text, error };
  }
  return { text, error: undefined };
}

/** Collects every payload of `name` emitted on `events`. */
export function collect<K extends keyof SluiceEvents>(events: SluiceEmitter, name: K): Array<SluiceEvents[K]> {
  const seen: Array<SluiceEvents[K]> = [];
  events.on(name, ((payload: SluiceEvents[K]) => seen.push(payload)) as never);
  return seen;
}
