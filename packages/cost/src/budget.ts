import { type CompletionContext, type Middleware, type Store, ValidationError } from '@sluice/core';
import { parseOptions } from '@sluice/core/kit';
import { type BudgetBucket, releaseHold, reserveHold, reservedUsd, settleHold } from './budget-bucket.js';
import { type BudgetPeriod, type BudgetScope, periodBucket } from './budget-period.js';
import { costOfUsage } from './cost-of-usage.js';
import { BudgetExceededError } from './errors.js';
import { priceEstimate } from './estimate-cost.js';
import { type BudgetLimit, type BudgetOptions, budgetOptionsSchema } from './options.js';
import { type PriceTable, priceTable } from './price-table.js';
import { promptCount } from './prompt-count.js';
import { type UnknownModelPolicy, resolvePrice } from './resolve-price.js';
import { settledCost } from './settled-cost.js';

/** What `budget` leaves in `ctx.state.budget` while the call is in flight. */
export interface BudgetState {
  /** The model the reservation was made for (the downgraded one, after a downgrade). */
  model: string;
  /** The worst-case cost reserved in every applicable limit. */
  reservedUsd: number;
  /** The model the caller asked for, when the budget downgraded it. */
  downgradedFrom: string | undefined;
}

interface Applicable {
  limit: BudgetLimit;
  scope: BudgetScope;
  key: string;
  ttlMs: number;
  periodId: string;
  resetsAt: number;
}

type Reservation = { ok: true } | { ok: false; blocked: Applicable; bucket: BudgetBucket };

/**
 * Spending limits, enforced before a call is sent: the call's worst-case
 * cost (its output at the cap) is reserved atomically in every applicable
 * limit with the store's `update`, and settled to the real cost when the
 * call is done (released if it failed with no usage), so any number of
 * concurrent calls can never spend past a limit. Periods are UTC hours,
 * days or months on the pipeline's clock.
 *
 * Place it after `trimContext` (it prices the trimmed prompt and reuses its
 * count) and before `retry` (one reservation covers every attempt).
 *
 * @param options - the limit(s), what to do on exceeding, warning thresholds, prices, store
 * @throws ValidationError naming a bad option
 * @throws BudgetExceededError (from the middleware, code `BUDGET_EXCEEDED`) when a call does not fit and `onExceed` is `'reject'`
 * @throws UnknownModelError (from the middleware) when the model has no price and `unknownModel` is `'error'`
 * @example
 * ```ts
 * llm.use(budget({
 *   limits: [{ limitUsd: 50, period: 'day' }, { scope: { tag: 'tenant' }, limitUsd: 5, period: 'day' }],
 *   onExceed: { downgradeTo: 'gpt-4.1-mini' },
 * }));
 * await llm.complete(request, { tags: { tenant: 'acme' } });
 * ```
 */
export function budget(options: BudgetOptions): Middleware {
  const config = parseOptions(budgetOptionsSchema, options, 'budget');
  const prices = config.prices ?? priceTable();
  const policy = config.unknownModel ?? 'error';
  const limits: BudgetLimit[] = config.limits ?? [
    { scope: config.scope, limitUsd: config.limitUsd as number, period: config.period as BudgetPeriod },
  ];
  const warnAt = config.warnAt ?? [0.8];
  const onExceed = config.onExceed ?? 'reject';
  const downgradeTo = typeof onExceed === 'object' ? [onExceed.downgradeTo].flat() : [];
  for (const model of downgradeTo) {
    if (!prices.lookup(model)) throw new ValidationError('budget.onExceed.downgradeTo', `no price for "${model}" in the price table`);
  }
  const prefix = `sluice:budget:${config.name ?? 'budget'}`;

  function applicable(ctx: CompletionContext): Applicable[] {
    const now = ctx.clock.now();
    return limits.flatMap((limit) => {
      const tag = limit.scope === undefined || limit.scope === 'global' ? undefined : limit.scope.tag;
      const value = tag === undefined ? undefined : ctx.tags[tag];
      if (tag !== undefined && value === undefined) return [];
      const scope: BudgetScope = tag === undefined || value === undefined ? 'global' : { tag, value };
      const scopeKey = scope === 'global' ? 'global' : `tag:${encodeURIComponent(scope.tag)}=${encodeURIComponent(scope.value)}`;
      const bucket = periodBucket(limit.period, now);
      // Kept one period past its end so a call settling late still finds its hold.
      const ttlMs = bucket.end - now + (bucket.end - bucket.start);
      return [{ limit, scope, key: `${prefix}:${scopeKey}:${limit.period}:${bucket.id}`, ttlMs, periodId: bucket.id, resetsAt: bucket.end }];
    });
  }

  function worstCase(ctx: CompletionContext): number {
    const match = resolvePrice(prices, ctx.request.model, policy);
    if (!match) {
      if (policy === 'warn') ctx.events.emit('price-unknown', { id: ctx.id, model: ctx.request.model, by: 'budget' });
      return 0;
    }
    const { count, approximate } = promptCount(ctx);
    return priceEstimate(match, ctx.request, count, approximate).worstCase;
  }

  async function reserveAll(store: Store, targets: Applicable[], id: string, usd: number, force: boolean): Promise<Reservation> {
    for (const [index, target] of targets.entries()) {
      const bucket = await store.update(target.key, reserveHold(id, usd, target.limit.limitUsd, force), target.ttlMs);
      if (Object.hasOwn(bucket.holds, id)) continue;
      for (const done of targets.slice(0, index)) await store.update(done.key, releaseHold(id), done.ttlMs);
      return { ok: false, blocked: target, bucket };
    }
    return { ok: true };
  }

  async function settleAll(ctx: CompletionContext, store: Store, targets: Applicable[], id: string, usd: number): Promise<void> {
    for (const target of targets) {
      const bucket = await store.update(target.key, settleHold(id, usd, target.limit.limitUsd, warnAt), target.ttlMs);
      for (const [threshold, by] of Object.entries(bucket.warned)) {
        if (by !== id) continue;
        ctx.events.emit('budget-warning', {
          scope: target.scope, period: target.limit.period, periodId: target.periodId,
          threshold: Number(threshold), limitUsd: target.limit.limitUsd, spentUsd: bucket.spentUsd,
        });
      }
    }
  }

  function exceeded(ctx: CompletionContext, refused: { ok: false; blocked: Applicable; bucket: BudgetBucket }, requestedUsd: number) {
    const { blocked, bucket } = refused;
    return {
      scope: blocked.scope, period: blocked.limit.period, limitUsd: blocked.limit.limitUsd,
      spentUsd: bucket.spentUsd, reservedUsd: reservedUsd(bucket), requestedUsd, resetsAt: blocked.resetsAt,
      id: ctx.id, model: ctx.request.model,
    };
  }

  /**
   * Reserves the call's worst case in every target, or applies `onExceed`:
   * downgrades (rewriting `ctx.request.model`), forces the hold, or throws.
   */
  async function admit(ctx: CompletionContext, store: Store, targets: Applicable[], id: string): Promise<number> {
    const requested = ctx.request.model;
    let worst = worstCase(ctx);
    let reservation = await reserveAll(store, targets, id, worst, false);
    if (reservation.ok) return worst;
    const refused = exceeded(ctx, reservation, worst);
    if (onExceed === 'warn') {
      ctx.events.emit('budget-reject', { ...refused, action: 'warn', downgradedTo: undefined });
      await reserveAll(store, targets, id, worst, true);
      return worst;
    }
    for (const model of downgradeTo) {
      if (model === ctx.request.model) continue;
      ctx.request = { ...ctx.request, model };
      worst = worstCase(ctx);
      reservation = await reserveAll(store, targets, id, worst, false);
      if (reservation.ok) {
        ctx.events.emit('budget-reject', { ...refused, action: 'downgrade', downgradedTo: model });
        return worst;
      }
    }
    const { id: _id, model: _model, ...details } = exceeded(ctx, reservation, worst);
    ctx.request = { ...ctx.request, model: requested };
    ctx.events.emit('budget-reject', { ...details, id: ctx.id, model: requested, action: 'reject', downgradedTo: undefined });
    throw new BudgetExceededError(details);
  }

  return async function budget(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const targets = applicable(ctx);
    if (targets.length === 0) return next();
    const store = config.store ?? ctx.store;
    const id = `${ctx.id}:${crypto.randomUUID()}`;
    const requested = ctx.request.model;
    const worst = await admit(ctx, store, targets, id);
    const downgradedFrom = ctx.request.model === requested ? undefined : requested;
    ctx.state.budget = { model: ctx.request.model, reservedUsd: worst, downgradedFrom };

    let settled = false;
    const settle = async (usd: number) => {
      if (settled) return;
      settled = true;
      await settleAll(ctx, store, targets, id, usd);
    };
    try {
      await next();
    } catch (error) {
      const match = prices.lookup(ctx.request.model);
      await settle(ctx.usage && match ? costOfUsage(ctx.usage, match.entry).usd : 0);
      throw error;
    }
    // Bound to the response next() produced: a stream settles when read to its end or cut.
    ctx.onSettled((settlement) => settle(settledCost(ctx, settlement, prices.lookup(ctx.request.model))?.usd ?? 0));
  };
}
