// Test helpers (not published: `files` excludes src/**/test-*.ts).
import type { MockUpstream } from './mock-upstream.js';

/** A minimal valid request body with one user message. */
export function chat(content = 'Hello there, mock', extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { model: 'gpt-4.1', messages: [{ role: 'user', content }], ...extra };
}

/** POSTs `body` (JSON-encoded unless a string) to the upstream's completions endpoint with the global fetch. */
export function post(upstream: MockUpstream, body: unknown, init: RequestInit = {}): Promise<Response> {
  return fetch(`${upstream.url}/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-test' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...init,
  });
}

/** Reads a body to its end, keeping what arrived before an error instead of losing it. */
export async function readAll(res: Response): Promise<{ text: string; error: unknown }> {
  let text = '';
  const decoder = new TextDecoder();
  const reader = res.body?.getReader();
  if (reader === undefined) return { text, error: undefined };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return { text: text + decoder.decode(), error: undefined };
      text += decoder.decode(value, { stream: true });
    }
  } catch (error: unknown) {
    return { text, error };
  }
}

/** The events of an SSE text: its `event:` name if any and its `data:`. */
export function sseEvents(text: string): Array<{ event: string | undefined; data: string }> {
  return text
    .split('\n\n')
    .filter((block) => block.trim() !== '')
    .map((block) => {
      let event: string | undefined;
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      return { event, data: data.join('\n') };
    });
}

/** The JSON payloads of an SSE text's `data:` events, `[DONE]` left out. */
export function sseChunks(text: string): Array<Record<string, unknown>> {
  return sseEvents(text)
    .filter((event) => event.data !== '[DONE]')
    .map((event) => JSON.parse(event.data) as Record<string, unknown>);
}
