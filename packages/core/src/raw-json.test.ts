import { describe, expect, it } from 'vitest';
import { createPipeline } from './pipeline.js';
import { openAICompatible } from './open-ai-compatible.js';
import { rawJson } from './raw-json.js';
import type { ChatCompletionChunk } from './schemas.js';
import { chunk, rawUpstream, sse } from './test-raw-upstream.js';

const request = { model: 'm', messages: [{ role: 'user' as const, content: 'hi' }] };
/** A completion the check leaves as it is, written with the upstream's own spacing. */
const exact = '{"id": "c1", "object": "chat.completion", "created": 1, "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok", "refusal": null}, "logprobs": null, "finish_reason": "stop"}], "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}';

async function pipelineTo(answer: string, keepRawJson: boolean | undefined) {
  const upstream = await rawUpstream((_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(answer)) });
    res.end(answer);
  });
  const options = keepRawJson === undefined ? {} : { keepRawJson };
  return createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null, ...options }) });
}

describe('rawJson', () => {
  it("gives a completion's JSON text as the upstream sent it, with keepRawJson", async () => {
    const llm = await pipelineTo(exact, true);
    const completion = await llm.complete(request);
    expect(rawJson(completion)).toBe(exact);
    expect(JSON.parse(rawJson(completion) as string)).toEqual(completion);
    // The text travels with the value, not with a copy of it, and is no field of it.
    expect(rawJson({ ...completion })).toBeUndefined();
    expect(rawJson(structuredClone(completion))).toBeUndefined();
    expect(Object.keys(completion)).not.toContain('rawJson');
    expect(JSON.stringify(completion)).toBe(JSON.stringify(JSON.parse(exact)));
    await llm.close({ graceMs: 0 });
  });

  it('gives nothing without keepRawJson, or for a completion the check sanitised', async () => {
    const plain = await pipelineTo(exact, undefined);
    expect(rawJson(await plain.complete(request))).toBeUndefined();
    await plain.close({ graceMs: 0 });
    // No refusal, logprobs or finish_reason: the check fills them in, so the text is no longer the value.
    const sanitised = await pipelineTo('{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"ok"}}]}', true);
    const completion = await sanitised.complete(request);
    expect(completion.choices[0]).toMatchObject({ finish_reason: null, logprobs: null, message: { refusal: null } });
    expect(rawJson(completion)).toBeUndefined();
    await sanitised.close({ graceMs: 0 });
  });

  it("gives each stream chunk's data text, except a chunk the check sanitised", async () => {
    const whole = chunk({ index: 0, delta: { content: 'a' }, logprobs: null, finish_reason: null });
    const patched = chunk({ index: 0, delta: null, finish_reason: 'stop' });
    const upstream = await rawUpstream((_req, res) => sse(res, [whole, patched, 'data: [DONE]\n\n']));
    const llm = createPipeline({ transport: openAICompatible({ baseUrl: upstream.url, apiKey: null, keepRawJson: true }) });
    const chunks: ChatCompletionChunk[] = [];
    for await (const part of llm.stream(request)) chunks.push(part);
    expect(chunks.map((part) => rawJson(part))).toEqual([whole.slice('data: '.length, -2), undefined]);
    expect(chunks[1]?.choices[0]?.delta).toEqual({});
    await llm.close({ graceMs: 0 });
  });

  it('gives nothing for a value the transport did not make', () => {
    expect(rawJson(JSON.parse(exact))).toBeUndefined();
  });
});
