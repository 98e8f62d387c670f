import type { z } from 'zod';
import { ValidationError } from './errors.js';

/**
 * Parses `value` with `schema`, throwing a {@link ValidationError} that
 * names the first bad field (`retry.attempts`, `request.messages.2.role`).
 * Every factory in sluice validates its options through this.
 *
 * @param schema - the zod schema
 * @param value - what the caller passed
 * @param name - prefix of the field path: the factory's or argument's name
 * @throws ValidationError naming the field and what is wrong with it
 * @example
 * ```ts
 * const options = parseOptions(z.object({ attempts: z.number().int().min(1) }), input, 'retry');
 * ```
 */
export function parseOptions<T extends z.ZodType>(schema: T, value: unknown, name: string): z.output<T> {
  if (isCallContext(value)) {
    // `use(retry)` instead of `use(retry())`: the factory was run as a middleware, with the call as its options.
    throw new ValidationError(name, `${name} was given a call's context as options: it is a middleware factory, so call it, as in use(${name}())`);
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const path = [name, ...(issue?.path ?? []).map(String)].join('.');
  return throwInvalid(path, issue?.message ?? 'is invalid', result.error);
}

function throwInvalid(field: string, message: string, cause: unknown): never {
  throw new ValidationError(field, message, { cause });
}

function isCallContext(value: unknown): boolean {
  const candidate = value as { onSettled?: unknown; request?: unknown; remainingMs?: unknown } | null;
  return typeof candidate?.onSettled === 'function' && typeof candidate.remainingMs === 'function' && candidate.request !== undefined;
}
