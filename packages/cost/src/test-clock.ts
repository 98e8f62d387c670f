// Test helpers (not published: `files` excludes src/**/test-*.ts).
//
// `@sluice/context` is built by another engineer at the same time. Until its
// counting functions exist, tests mock the module with this shim:
//   vi.mock('@sluice/context', async (importOriginal) => (await import('./test-context.js')).contextOrShim(importOriginal));
// Once the real module exports them, they are used as they are.
import type { Clock } from '@sluice/core';

interface Counted {
  tokens: number;
  approximate: boolean;
}

/** About four characters a token, like core's estimate: deterministic, so tests can compute what it gives. */
export const shimContext = {
  countTokens(text: string): Counted {
    return { tokens: Math.ceil(text.length / 4), approximate: true };
  },
  countMessages(messages: ReadonlyArray<{ content?: unknown }>): Counted {
    let chars = 0;
    for (const message of messages) if (typeof message.content === 'string') chars += message.content.length;
    return { tokens: Math.ceil(chars / 4) + 4 * messages.length + 3, approximate: true };
  },
};

/** The real `@sluice/context` when it exports the counting functions, else {@link shimContext}. */
export async function contextOrShim(importOriginal: () => Promise<unknown>): Promise<unknown> {
  try {
    const real = (await importOriginal()) as Record<string, unknown>;
    if (typeof real.countTokens === 'function' && typeof real.countMessages === 'function') return real;
  } catch {
    // Not resolvable yet.
  }
  return shimContext;
}

/** A clock whose `now` the test sets; timers are real (nothing here sleeps on them). */
export function manualClock(start = Date.UTC(2026, 10, 25, 9, 0, 0)): Clock & { time: number; advance(ms: number): void } {
  return {
    time: start,
    now() {
      return this.time;
    },
    advance(ms: number) {
      this.time += ms;
    },
    setTimeout: (callback, ms) => {
      const handle = setTimeout(callback, ms);
      handle.unref();
      return handle;
    },
    clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
  };
}
