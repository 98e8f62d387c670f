import { describe, expect, it } from 'vitest';
import type { CompletionContext } from './context.js';
import type { ChatCompletionRequest } from './schemas.js';
import { requestBody } from './transport-config.js';

const messages = [{ role: 'user' as const, content: 'Hi' }];
const sent = (request: ChatCompletionRequest, stream: boolean, includeUsage = true) =>
  JSON.parse(requestBody({ request, stream } as CompletionContext, includeUsage).body) as Record<string, unknown>;

describe('requestBody', () => {
  it('sends stream: false on a non-stream call, whether or not the request says so', () => {
    expect(sent({ model: 'm', messages }, false)).toEqual({ model: 'm', messages, stream: false });
    expect(sent({ model: 'm', messages, stream: false }, false)).toEqual({ model: 'm', messages, stream: false });
  });

  it('asks for usage on a stream, keeping the caller’s other stream options', () => {
    expect(sent({ model: 'm', messages, stream: true }, true)).toEqual({ model: 'm', messages, stream: true, stream_options: { include_usage: true } });
    expect(sent({ model: 'm', messages }, true)).toEqual({ model: 'm', messages, stream: true, stream_options: { include_usage: true } });
    expect(sent({ model: 'm', messages, stream: true, stream_options: { include_usage: false } }, true)).toEqual({
      model: 'm',
      messages,
      stream: true,
      stream_options: { include_usage: true },
    });
  });

  it('sends the caller’s request as it is when it already asks for usage, and asks for none when turned off', () => {
    const asked = { model: 'm', messages, stream: true as const, stream_options: { include_usage: true } };
    expect(requestBody({ request: asked, stream: true } as CompletionContext, true)).toEqual({ body: JSON.stringify(asked), callerAskedUsage: true });
    expect(sent({ model: 'm', messages, stream: true }, true, false)).toEqual({ model: 'm', messages, stream: true });
  });
});
