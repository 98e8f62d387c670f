import type { ChatMessage } from '@sluice/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { planTrim } from './plan-trim.js';

type Turn = 'system' | 'developer' | 'user' | 'assistant' | 'tools';

/** A chat of turns, a `tools` turn being an assistant's tool_calls and 1–3 results. */
const chat = fc
  .tuple(
    fc.array(fc.constantFrom<Turn>('system', 'developer'), { maxLength: 2 }),
    fc.array(fc.constantFrom<Turn>('user', 'assistant', 'tools', 'system'), { maxLength: 30 }),
    fc.integer({ min: 1, max: 3 }),
  )
  .map(([head, body, results]) => {
    const messages: ChatMessage[] = [];
    for (const turn of [...head, ...body]) {
      if (turn === 'tools') {
        const id = `call_${messages.length}`;
        messages.push({ role: 'assistant', content: null, tool_calls: [{ id, type: 'function', function: { name: 'f', arguments: '{}' } }] });
        for (let r = 0; r < results; r++) messages.push({ role: 'tool', tool_call_id: id, content: `result ${r}` });
      } else messages.push({ role: turn, content: `${turn} ${messages.length}` });
    }
    return messages;
  });

const scenario = chat.chain((messages) =>
  fc.record({
    messages: fc.constant(messages),
    counts: fc.array(fc.integer({ min: 1, max: 400 }), { minLength: messages.length, maxLength: messages.length }),
    overhead: fc.integer({ min: 0, max: 200 }),
    budget: fc.integer({ min: 0, max: 6_000 }),
  }),
);

const lastUser = (messages: ChatMessage[]) => messages.map((m) => m.role).lastIndexOf('user');
const sum = (counts: number[], indices: number[]) => indices.reduce((total, i) => total + (counts[i] ?? 0), 0);

describe('planTrim', () => {
  it('always fits the budget, or says by how much what cannot be dropped is over it', () => {
    fc.assert(
      fc.property(scenario, ({ messages, counts, overhead, budget }) => {
        const plan = planTrim(messages, counts, overhead, budget);
        const pinned = messages.flatMap((m, i) => (m.role === 'system' || m.role === 'developer' || i === lastUser(messages) ? [i] : []));
        if ('needed' in plan) {
          expect(plan.needed).toBe(overhead + sum(counts, pinned));
          expect(plan.needed).toBeGreaterThan(budget);
          return;
        }
        expect(plan.tokens).toBeLessThanOrEqual(budget);
        expect(plan.tokens).toBe(overhead + sum(counts, plan.kept));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps every system and developer message and the last user turn', () => {
    fc.assert(
      fc.property(scenario, ({ messages, counts, overhead, budget }) => {
        const plan = planTrim(messages, counts, overhead, budget);
        if ('needed' in plan) return;
        messages.forEach((message, i) => {
          if (message.role === 'system' || message.role === 'developer') expect(plan.kept).toContain(i);
        });
        if (lastUser(messages) >= 0) expect(plan.kept).toContain(lastUser(messages));
      }),
      { numRuns: 500 },
    );
  });

  it('keeps or drops an assistant tool call with all its results', () => {
    fc.assert(
      fc.property(scenario, ({ messages, counts, overhead, budget }) => {
        const plan = planTrim(messages, counts, overhead, budget);
        if ('needed' in plan) return;
        const kept = new Set(plan.kept);
        messages.forEach((message, i) => {
          if (message.role !== 'tool') return;
          let call = i;
          while (messages[call]?.role === 'tool') call--;
          expect(kept.has(i)).toBe(kept.has(call));
        });
      }),
      { numRuns: 500 },
    );
  });

  it('preserves order and drops only the oldest turns, with no holes', () => {
    fc.assert(
      fc.property(scenario, ({ messages, counts, overhead, budget }) => {
        const plan = planTrim(messages, counts, overhead, budget);
        if ('needed' in plan) return;
        expect([...plan.kept, ...plan.dropped].sort((a, b) => a - b)).toEqual(messages.map((_, i) => i));
        expect(plan.kept).toEqual([...plan.kept].sort((a, b) => a - b));
        const droppable = (i: number) => messages[i]?.role !== 'system' && messages[i]?.role !== 'developer' && i !== lastUser(messages);
        const newestDropped = Math.max(-1, ...plan.dropped);
        for (const i of plan.kept) if (droppable(i) && messages[i]?.role !== 'tool') expect(i).toBeGreaterThan(newestDropped);
      }),
      { numRuns: 500 },
    );
  });

  it('keeps everything that fits', () => {
    const messages: ChatMessage[] = [
      { role: 'system', content: 's' },
      { role: 'user', content: 'u1' },
      { role: 'assistant', content: 'a1' },
      { role: 'user', content: 'u2' },
    ];
    expect(planTrim(messages, [10, 10, 10, 10], 3, 43)).toEqual({ kept: [0, 1, 2, 3], dropped: [], tokens: 43 });
    expect(planTrim(messages, [10, 10, 10, 10], 3, 42)).toEqual({ kept: [0, 2, 3], dropped: [1], tokens: 33 });
    expect(planTrim(messages, [10, 10, 10, 10], 3, 22)).toEqual({ needed: 23 });
  });
});
