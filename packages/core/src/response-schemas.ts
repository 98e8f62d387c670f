import * as z from 'zod/mini';

/*
 * What the transport accepts from an upstream, as zod schemas. The
 * transport checks every response with a hand-written pass that mirrors
 * these (see validate-response.ts) because zod costs several times more
 * per chunk; the schemas run only when that pass rejects something, to
 * name the bad field in the error. A test holds the two to the same
 * verdicts.
 *
 * They are looser than the request-side types in three documented ways,
 * each sanitised by the transport before a caller sees the value:
 * `usage` never rejects (a bad one is dropped), `id`/`model` may be
 * missing (set to `''`), and a chunk's `delta` may be `null` (set to `{}`).
 */

const envelope = {
  id: z.nullish(z.string()),
  model: z.nullish(z.string()),
  usage: z.optional(z.unknown()),
};

const finishReason = z.nullish(z.string());

const toolCall = z.looseObject({
  id: z.string(),
  type: z.optional(z.literal('function')),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

const message = z.looseObject({
  role: z.optional(z.literal('assistant')),
  content: z.nullish(z.union([z.string(), z.array(z.unknown())])),
  refusal: z.nullish(z.string()),
  name: z.nullish(z.string()),
  tool_calls: z.nullish(z.array(toolCall)),
});

/**
 * A non-streamed completion as the transport accepts it from an upstream.
 * Used for the error message when a response is rejected.
 */
export const completionResponseSchema = z.looseObject({
  ...envelope,
  choices: z.array(
    z
      .looseObject({
        index: z.optional(z.number()),
        message: z.optional(message),
        finish_reason: finishReason,
      })
      .check((ctx) => {
        const choice = ctx.value as Record<string, unknown>;
        if (choice.message !== undefined) return;
        ctx.issues.push({
          code: 'custom',
          input: choice,
          path: ['message'],
          message:
            choice.delta !== undefined
              ? 'a completion carries a delta where a message belongs'
              : 'a completion choice has no message',
        });
      }),
  ),
});

const toolCallDelta = z.looseObject({
  index: z.optional(z.number()),
  id: z.nullish(z.string()),
  type: z.nullish(z.literal('function')),
  function: z.nullish(z.looseObject({ name: z.nullish(z.string()), arguments: z.nullish(z.string()) })),
});

const delta = z.looseObject({
  role: z.nullish(z.string()),
  content: z.nullish(z.string()),
  refusal: z.nullish(z.string()),
  tool_calls: z.nullish(z.array(toolCallDelta)),
});

const chunkChoice = z
  .looseObject({
    index: z.optional(z.number()),
    delta: z.nullish(delta),
    finish_reason: finishReason,
  })
  .check((ctx) => {
    const choice = ctx.value as Record<string, unknown>;
    if (choice.delta !== undefined) return;
    // A finish-only choice (no delta, a finish_reason) is a chunk; a message in a delta's place is not.
    if (choice.message === undefined && typeof choice.finish_reason === 'string') return;
    ctx.issues.push({
      code: 'custom',
      input: choice,
      path: ['delta'],
      message:
        choice.message !== undefined
          ? 'a stream chunk carries a message where a delta belongs'
          : 'a stream chunk choice has neither a delta nor a finish_reason',
    });
  });

/**
 * One streamed `chat.completion.chunk` as the transport accepts it from an
 * upstream. Used for the error message when a chunk is rejected.
 */
export const chunkResponseSchema = z.looseObject({
  ...envelope,
  choices: z.array(chunkChoice),
});
