import type { ChatMessage } from '@sluice/core';

/** Which messages a trim keeps; internal. */
export interface TrimPlan {
  /** Indices of the kept messages, ascending. */
  kept: number[];
  /** Indices of the dropped messages, ascending. */
  dropped: number[];
  /** Tokens of the kept messages plus the fixed overhead. */
  tokens: number;
}

/** The trim cannot fit: what cannot be dropped needs `needed` tokens; internal. */
export interface TrimOverflow {
  needed: number;
}

interface Unit {
  start: number;
  end: number;
  tokens: number;
  pinned: boolean;
}

const isInstruction = (message: ChatMessage) => message.role === 'system' || message.role === 'developer';

/**
 * Splits a chat into units that are kept or dropped whole: each message
 * with the `tool` messages that follow it, so an assistant's `tool_calls`
 * never lose their results (nor results their call). System and developer
 * messages and the last user message's unit are pinned.
 */
function unitsOf(messages: readonly ChatMessage[], counts: readonly number[]): Unit[] {
  let lastUser = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.role === 'user') {
      lastUser = i;
      break;
    }
  }
  const units: Unit[] = [];
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i] as ChatMessage;
    const current = units[units.length - 1];
    if (message.role === 'tool' && current) {
      current.end = i + 1;
      current.tokens += counts[i] ?? 0;
      continue;
    }
    units.push({ start: i, end: i + 1, tokens: counts[i] ?? 0, pinned: isInstruction(message) || i === lastUser });
  }
  return units;
}

/**
 * Plans a trim: keeps every pinned unit (system/developer messages, the
 * last user turn) and then the newest units that fit `budget`, newest
 * first, stopping at the first that does not fit so the kept history has
 * no holes. Order is preserved.
 *
 * @param messages - the chat
 * @param counts - each message's tokens
 * @param overhead - tokens that are always sent (reply priming, tool definitions, a summary)
 * @param budget - the most tokens the prompt may have
 * @example
 * ```ts
 * const plan = planTrim(messages, counts, 3, 96_000);
 * if ('needed' in plan) throw new PromptTooLongError(model, plan.needed, 96_000);
 * ```
 */
export function planTrim(
  messages: readonly ChatMessage[],
  counts: readonly number[],
  overhead: number,
  budget: number,
): TrimPlan | TrimOverflow {
  const units = unitsOf(messages, counts);
  let tokens = overhead;
  for (const unit of units) if (unit.pinned) tokens += unit.tokens;
  if (tokens > budget) return { needed: tokens };
  const keep = units.map((unit) => unit.pinned);
  for (let u = units.length - 1; u >= 0; u--) {
    const unit = units[u] as Unit;
    if (unit.pinned) continue;
    if (tokens + unit.tokens > budget) break;
    tokens += unit.tokens;
    keep[u] = true;
  }
  const kept: number[] = [];
  const dropped: number[] = [];
  units.forEach((unit, u) => {
    for (let i = unit.start; i < unit.end; i++) (keep[u] ? kept : dropped).push(i);
  });
  return { kept, dropped, tokens };
}
