import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compose, keepsChainRules } from './compose.js';
import type { CompletionContext, Middleware } from './context.js';

const ctx = {} as CompletionContext;
const done = async () => {};

describe('compose', () => {
  it('runs middleware in Koa order: in on the way down, out on the way up', async () => {
    const order: string[] = [];
    const step = (name: string): Middleware => async (_ctx, next) => {
      order.push(`${name} in`);
      await next();
      order.push(`${name} out`);
    };
    await compose([step('a'), step('b'), step('c')])(ctx, async () => {
      order.push('terminal');
    });
    expect(order).toEqual(['a in', 'b in', 'c in', 'terminal', 'c out', 'b out', 'a out']);
  });

  it('with zero middleware calls the terminal step only', async () => {
    let called = 0;
    await compose([])(ctx, async () => {
      called++;
    });
    expect(called).toBe(1);
  });

  it('propagates an error thrown downstream through every await next()', async () => {
    const seen: string[] = [];
    const outer: Middleware = async (_ctx, next) => {
      try {
        await next();
      } catch (error) {
        seen.push(`outer caught ${(error as Error).message}`);
        throw error;
      }
    };
    const run = compose([outer, async (_c, next) => next()]);
    await expect(run(ctx, async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(seen).toEqual(['outer caught boom']);
  });

  it('lets a middleware answer without calling next()', async () => {
    let reached = false;
    await compose([async () => {}])(ctx, async () => {
      reached = true;
    });
    expect(reached).toBe(false);
  });

  it('runs everything downstream afresh when next() is called again after it settled', async () => {
    let terminal = 0;
    let inner = 0;
    const twice: Middleware = async (_ctx, next) => {
      await next().catch(() => {});
      await next();
    };
    await compose([twice, async (_c, next) => {
      inner++;
      await next();
    }])(ctx, async () => {
      terminal++;
      if (terminal === 1) throw new Error('first attempt fails');
    });
    expect({ inner, terminal }).toEqual({ inner: 2, terminal: 2 });
  });

  it('lets steps that return their next() as it is be called afresh once the call settled, failed or not', async () => {
    let terminal = 0;
    const seen: string[] = [];
    const twice: Middleware = async (_ctx, next) => {
      await next().catch((error: Error) => seen.push(error.message));
      await next();
    };
    const passOn: Middleware = (_ctx, next) => next();
    const syncThrowOnce: Middleware = (_ctx, next) => {
      if (terminal === 0) {
        terminal++;
        throw new Error('thrown before the terminal');
      }
      return next();
    };
    await compose([twice, passOn, passOn, syncThrowOnce])(ctx, async () => {
      terminal++;
    });
    expect({ seen, terminal }).toEqual({ seen: ['thrown before the terminal'], terminal: 2 });
  });

  it('rejects a second next() while the first is still pending', async () => {
    const concurrent: Middleware = async (_ctx, next) => {
      await Promise.all([next(), next()]);
    };
    await expect(compose([concurrent])(ctx, done)).rejects.toMatchObject({ code: 'NEXT_PENDING' });
  });

  it('rejects a middleware that resolves while its next() is pending, naming it', async () => {
    const forgetful: Middleware = async function forgetful(_ctx, next) {
      void next();
    };
    let release!: () => void;
    const slow = () => new Promise<void>((resolve) => (release = resolve));
    const run = compose([forgetful])(ctx, slow);
    await expect(run).rejects.toMatchObject({ code: 'MISSING_AWAIT', message: expect.stringContaining('forgetful') });
    release();
  });

  it('rejects non-function middleware with a ValidationError naming the index', () => {
    expect(() => compose([async (_c, n) => n(), 'nope' as unknown as Middleware])).toThrow(
      expect.objectContaining({ code: 'VALIDATION', field: 'middleware.1' }),
    );
  });

  it('turns a synchronous throw into a rejection', async () => {
    const sync = (() => {
      throw new Error('sync');
    }) as unknown as Middleware;
    await expect(compose([sync])(ctx, done)).rejects.toThrow('sync');
  });
});

describe('compose: middleware marked with keepsChainRules', () => {
  type Kind = 'await' | 'then' | 'forward' | 'twice' | 'answer';
  /** A middleware that keeps the rules, of each shape sluice's own take; `log` hears it in and out. */
  const shaped = (kind: Kind, name: string, log: string[]): Middleware => {
    switch (kind) {
      case 'await':
        return async (_ctx, next) => {
          log.push(`${name} in`);
          await next();
          log.push(`${name} out`);
        };
      case 'then':
        return (_ctx, next) => {
          log.push(`${name} in`);
          return next().then(() => void log.push(`${name} out`));
        };
      case 'forward':
        return (_ctx, next) => {
          log.push(`${name} in`);
          return next();
        };
      case 'twice':
        // A retry: a second call once the first failed, never while it is pending.
        return (_ctx, next) => {
          log.push(`${name} in`);
          return next().catch(() => next()).then(() => void log.push(`${name} out`));
        };
      case 'answer':
        return async () => {
          log.push(`${name} answers`);
        };
    }
  };
  const kinds = fc.constantFrom<Kind>('await', 'then', 'forward', 'twice', 'answer');

  it('runs any chain of marked and unmarked middleware exactly as an unmarked one, retries and failures included', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ kind: kinds, marked: fc.boolean() }), { maxLength: 6 }), fc.nat({ max: 3 }), async (chain, failures) => {
        const run = async (mark: boolean) => {
          const log: string[] = [];
          const steps = chain.map(({ kind, marked }, index) => {
            const fn = shaped(kind, `m${index}`, log);
            return mark && marked ? keepsChainRules(fn) : fn;
          });
          let calls = 0;
          const outcome = await compose(steps)(ctx, async () => {
            log.push(`terminal ${++calls}`);
            if (calls <= failures) throw new Error(`failure ${calls}`);
          }).then(
            () => 'resolved',
            (error: Error & { code?: string }) => `rejected: ${error.code ?? error.message}`,
          );
          return { log, outcome };
        };
        expect(await run(true)).toEqual(await run(false));
      }),
      { numRuns: 300 },
    );
  });

  it('still rejects a second pending next() or a missing await in an unmarked middleware among marked ones', async () => {
    const marked = keepsChainRules((_ctx: CompletionContext, next: () => Promise<void>) => next().then(() => {}));
    const concurrent: Middleware = async (_ctx, next) => {
      await Promise.all([next(), next()]);
    };
    await expect(compose([marked, concurrent, marked])(ctx, done)).rejects.toMatchObject({ code: 'NEXT_PENDING' });
    const forgetful: Middleware = async function forgetful(_ctx, next) {
      void next();
    };
    let release!: () => void;
    const slow = () => new Promise<void>((resolve) => (release = resolve));
    await expect(compose([marked, forgetful, marked])(ctx, slow)).rejects.toMatchObject({ code: 'MISSING_AWAIT' });
    release();
  });

  it('lets an unmarked middleware call next() again over marked ones that pass its call on as it is', async () => {
    const forward = keepsChainRules((_ctx: CompletionContext, next: () => Promise<void>) => next());
    const inner = keepsChainRules((_ctx: CompletionContext, next: () => Promise<void>) => next().then(() => {}));
    let attempts = 0;
    const again: Middleware = async (_ctx, next) => {
      await next().catch(() => {});
      await next();
    };
    await compose([again, forward, forward, inner])(ctx, async () => {
      if (++attempts === 1) throw new Error('first attempt fails');
    });
    expect(attempts).toBe(2);
  });

  it('returns the middleware it marks, callable as before', async () => {
    const fn: Middleware = async (_ctx, next) => next();
    expect(keepsChainRules(fn)).toBe(fn);
    await expect(compose([fn])(ctx, done)).resolves.toBeUndefined();
  });
});
