/*
 * Whether a reply is a MockReply, field by field. Its own module, importing
 * nothing, so the options, the faults and the replies can all check with it
 * without an import cycle.
 */

/** A reply that is not a `MockReply`: what the mock says, rather than a TypeError from deep inside it. */
export class ReplyShapeError extends TypeError {}

/**
 * What is wrong with a reply's fields, if anything (not `usage`'s values: a
 * test may want nonsense there, as the `usage` fault sends): the field
 * (`.toolCalls[0].name`, or '' for the reply itself) and why.
 *
 * @param reply - the reply given or returned
 */
export function replyIssue(reply: unknown): { field: string; why: string } | undefined {
  const kind = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value);
  if (typeof reply !== 'object' || reply === null || Array.isArray(reply)) return { field: '', why: `must be a string, a MockReply object or null, got ${kind(reply)}` };
  const { content, toolCalls, finishReason, usage } = reply as Record<string, unknown>;
  if (content !== undefined && content !== null && typeof content !== 'string') return { field: '.content', why: `must be a string or null, got ${kind(content)}` };
  if (finishReason !== undefined && typeof finishReason !== 'string') return { field: '.finishReason', why: `must be a string, got ${kind(finishReason)}` };
  if (usage !== undefined && (typeof usage !== 'object' || usage === null)) return { field: '.usage', why: `must be an object, got ${kind(usage)}` };
  if (toolCalls === undefined) return undefined;
  if (!Array.isArray(toolCalls)) return { field: '.toolCalls', why: `must be an array of { name, arguments? }, got ${kind(toolCalls)}` };
  for (let index = 0; index < toolCalls.length; index++) {
    const call: unknown = toolCalls[index];
    const field = `.toolCalls[${index}]`;
    if (typeof call !== 'object' || call === null) return { field, why: `must be { name, arguments? }, got ${kind(call)}` };
    const { name, id, arguments: args } = call as Record<string, unknown>;
    if (typeof name !== 'string' || name === '') return { field: `${field}.name`, why: 'must be a non-empty string' };
    if (id !== undefined && typeof id !== 'string') return { field: `${field}.id`, why: `must be a string, got ${kind(id)}` };
    if (args !== undefined && typeof args !== 'string' && (typeof args !== 'object' || args === null)) {
      return { field: `${field}.arguments`, why: `must be a JSON string or an object, got ${kind(args)}` };
    }
  }
  return undefined;
}

/**
 * Throws when a reply's fields are not a `MockReply`'s.
 *
 * @param reply - the reply given or returned
 * @param where - how the message names it (`reply`, `the reply function's result`)
 * @throws ReplyShapeError naming the bad field
 */
export function checkReply(reply: unknown, where: string): void {
  const issue = replyIssue(reply);
  if (issue) throw new ReplyShapeError(`mockUpstream: ${where}${issue.field} ${issue.why}`);
}
