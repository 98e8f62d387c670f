import { type CompletionContext, type Middleware, ValidationError } from '@sluice/core';
import { type KeyedState, keyedState, parseOptions } from '@sluice/core/kit';
import { type BudgetBucket, releaseHold, reserveHold, reservedUsd, settleHold } from './budget-bucket.js';
import { type BudgetPeriod, periodBucket } from './budget-period.js';
import { costOfUsage } from './cost-of-usage.js';
import { type BudgetExceededDetails, BudgetExceededError } from './errors.js';
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
  state: KeyedState;
  /** The state's key under the limit's key option (`global`, `tenant:acme`). */
  key: string;
  /** The record's key within the namespace: budget name, key, period and period id. */
  record: string;
  ttlMs: number;
  periodId: string;
  resetsAt: number;
}

type Reservation = { ok: true } | { ok: false; blocked: Applicable; bucket: BudgetBucket };

/**
 * Spending limits, enforced before a call is sent: the call's worst-case
 * cost (its output at the cap) is reserved atomically in every applicable
 * limit through the store's `update`, and settled to the real cost when the
 * call is done (released if it failed with no usage), so any number of
 * concurrent calls can never spend past a limit. Periods are UTC hours,
 * days or months on the pipeline's clock; each record expires one period
 * after its own ends. State lives under `sluice:cost:` in the call's store
 * (or `store`); if the store fails before a call is sent, the call is
 * refused (`onStoreError: 'closed'`, the default).
 *
 * Place it after `trimContext` (it prices the trimmed prompt and reuses its
 * count) and before `retry` (one reservation covers every attempt).
 *
 * @param options - the limit(s), what to do on exceeding, warning thresholds, prices, store and its failure policy
 * @throws ValidationError naming a bad option
 * @throws BudgetExceededError (from the middleware, code `BUDGET_EXCEEDED`, final) when a call does not fit and `onExceed` is `'reject'`
 * @throws StoreError (from the middleware, code `STORE_UNAVAILABLE`) when the store fails before sending and `onStoreError` is `'closed'`
 * @throws UnknownModelError (from the middleware) when the model has no price and `unknownModel` is `'error'`
 * @example
 * ```ts
 * llm.use(budget({
 *   limits: [{ limitUsd: 50, period: 'day' }, { key: { tag: 'tenant' }, limitUsd: 5, period: 'day' }],
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
    { key: config.key, limitUsd: config.limitUsd as number, period: config.period as BudgetPeriod },
  ];
  const warnAt = config.warnAt ?? [0.8];
  const onExceed = config.onExceed ?? 'reject';
  const downgradeTo = typeof onExceed === 'object' ? [onExceed.downgradeTo].flat() : [];
  for (const model of downgradeTo) {
    if (!prices.lookup(model)) throw new ValidationError('budget.onExceed.downgradeTo', `no price for "${model}" in the price table`);
  }
  const name = config.name ?? 'budget';
  const states = limits.map((limit, index) =>
    keyedState({
      name: 'cost',
      key: limit.key,
      defaultKey: 'global',
      field: config.limits ? `budget.limits.${index}.key` : 'budget.key',
      store: config.store,
      // A spend guard that cannot reserve cannot bound spend: refuse by default.
      onStoreError: config.onStoreError ?? 'closed',
    }),
  );

  function applicable(ctx: CompletionContext): Applicable[] {
    const now = ctx.clock.now();
    return limits.map((limit, index) => {
      const state = states[index] as KeyedState;
      const key = state.keyOf(ctx);
      const bucket = periodBucket(limit.period, now);
      // Kept one period past its end so a call settling late still finds its hold.
      const ttlMs = bucket.end - now + (bucket.end - bucket.start);
      const record = `${name}:${key}:${limit.period}:${bucket.id}`;
      return { limit, state, key, record, ttlMs, periodId: bucket.id, resetsAt: bucket.end };
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

  const release = (ctx: CompletionContext, targets: Applicable[], id: string) =>
    Promise.all(targets.map((target) => target.state.update(ctx, target.record, releaseHold(id), { ttlMs: target.ttlMs, phase: 'settle' })));

  async function reserveAll(ctx: CompletionContext, targets: Applicable[], id: string, usd: number, force: boolean): Promise<Reservation> {
    for (const [index, target] of targets.entries()) {
      let bucket: BudgetBucket | undefined;
      try {
        bucket = await target.state.update<BudgetBucket>(ctx, target.record, reserveHold(id, usd, target.limit.limitUsd, force), { ttlMs: target.ttlMs });
      } catch (error) {
        await release(ctx, targets.slice(0, index), id);
        throw error;
      }
      // Undefined: the store failed under the 'open' policy, so this limit lets the call through unmetered.
      if (bucket === undefined || Object.hasOwn(bucket.holds, id)) continue;
      await release(ctx, targets.slice(0, index), id);
      return { ok: false, blocked: target, bucket };
    }
    return { ok: true };
  }

  async function settleAll(ctx: CompletionContext, targets: Applicable[], id: string, usd: number): Promise<void> {
    for (const target of targets) {
      const { limit } = target;
      const bucket = await target.state.update<BudgetBucket>(ctx, target.record, settleHold(id, usd, limit.limitUsd, warnAt), {
        ttlMs: target.ttlMs,
        phase: 'settle',
      });
      for (const [threshold, by] of Object.entries(bucket?.warned ?? {})) {
        if (by !== id || !bucket) continue;
        ctx.events.emit('budget-warning', {
          id: ctx.id, key: target.key, period: limit.period, periodId: target.periodId,
          threshold: Number(threshold), limitUsd: limit.limitUsd, spentUsd: bucket.spentUsd,
        });
      }
    }
  }

  function details(refused: { ok: false; blocked: Applicable; bucket: BudgetBucket }, requestedUsd: number): BudgetExceededDetails {
    const { blocked, bucket } = refused;
    return {
      key: blocked.key, period: blocked.limit.period, limitUsd: blocked.limit.limitUsd,
      spentUsd: bucket.spentUsd, reservedUsd: reservedUsd(bucket), requestedUsd, resetsAt: blocked.resetsAt,
    };
  }

  /**
   * Reserves the call's worst case in every target, or applies `onExceed`:
   * downgrades (rewriting `ctx.request.model`), forces the hold, or throws.
   */
  async function admit(ctx: CompletionContext, targets: Applicable[], id: string): Promise<number> {
    const requested = ctx.request.model;
    let worst = worstCase(ctx);
    let reservation = await reserveAll(ctx, targets, id, worst, false);
    if (reservation.ok) return worst;
    const { resetsAt: _resetsAt, ...refused } = details(reservation, worst);
    if (onExceed === 'warn') {
      ctx.events.emit('budget-reject', { ...refused, id: ctx.id, model: requested, action: 'warn', downgradedTo: undefined });
      await reserveAll(ctx, targets, id, worst, true);
      return worst;
    }
    for (const model of downgradeTo) {
      if (model === ctx.request.model) continue;
      ctx.request = { ...ctx.request, model };
      worst = worstCase(ctx);
      reservation = await reserveAll(ctx, targets, id, worst, false);
      if (reservation.ok) {
        ctx.events.emit('budget-reject', { ...refused, id: ctx.id, model: requested, action: 'downgrade', downgradedTo: model });
        return worst;
      }
    }
    const final = details(reservation, worst);
    ctx.request = { ...ctx.request, model: requested };
    const { resetsAt: _at, ...payload } = final;
    ctx.events.emit('budget-reject', { ...payload, id: ctx.id, model: requested, action: 'reject', downgradedTo: undefined });
    throw new BudgetExceededError(final);
  }

  return async function budget(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    const targets = applicable(ctx);
    const id = `${ctx.id}:${crypto.randomUUID()}`;
    const requested = ctx.request.model;
    const worst = await admit(ctx, targets, id);
    const downgradedFrom = ctx.request.model === requested ? undefined : requested;
    ctx.state.budget = { model: ctx.request.model, reservedUsd: worst, downgradedFrom };

    let settled = false;
    const settle = async (usd: number) => {
      if (settled) return;
      settled = true;
      await settleAll(ctx, targets, id, usd);
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
