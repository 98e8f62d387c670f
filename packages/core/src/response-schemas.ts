import { z } from 'zod';

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
  id: z.string().nullish(),
  model: z.string().nullish(),
  usage: z.unknown().optional(),
};

const finishReason = z.string().nullish();

const toolCall = z.looseObject({
  id: z.string(),
  type: z.literal('function').optional(),
  function: z.looseObject({ name: z.string(), arguments: z.string() }),
});

const message = z.looseObject({
  role: z.literal('assistant').optional(),
  content: z.union([z.string(), z.array(z.unknown())]).nullish(),
  refusal: z.string().nullish(),
  name: z.string().nullish(),
  tool_calls: z.array(toolCall).nullish(),
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
        index: z.number().optional(),
        message: message.optional(),
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
  index: z.number().optional(),
  id: z.string().nullish(),
  type: z.literal('function').nullish(),
  function: z.looseObject({ name: z.string().nullish(), arguments: z.string().nullish() }).nullish(),
});

const delta = z.looseObject({
  role: z.string().nullish(),
  content: z.string().nullish(),
  refusal: z.string().nullish(),
  tool_calls: z.array(toolCallDelta).nullish(),
});

const chunkChoice = z
  .looseObject({
    index: z.number().optional(),
    delta: delta.nullish(),
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
