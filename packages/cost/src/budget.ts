import { type CompletionContext, type Middleware, type Settlement, ValidationError } from '@sluice/core';
import { afterNext, keepsChainRules, type KeyedState, keyedState, parseOptions } from '@sluice/core/kit';
import { type BudgetBucket, type Hold, heldUsd, holdSlot, releaseHold, reserveHold, settleHold } from './budget-bucket.js';
import { type BudgetPeriod, type PeriodBucket, periodBucket } from './budget-period.js';
import { type BudgetExceededDetails, BudgetExceededError } from './errors.js';
import { worstCaseUsd } from './estimate-cost.js';
import { type BudgetLimit, type BudgetOptions, budgetOptionsSchema } from './options.js';
import { type PriceTable, priceTable } from './price-table.js';
import { promptCount } from './prompt-count.js';
import { type UnknownModelPolicy, resolvePrice } from './resolve-price.js';
import { settledUsd } from './settled-cost.js';

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
  /** When the record expires (epoch ms): once its period ended and every hold made in it has expired. */
  expiresAt: number;
  periodId: string;
  resetsAt: number;
}

/** A limit that refused the call, with what its record held then (read at once: on the memory store it may be changed in place). */
interface Refusal {
  ok: false;
  blocked: Applicable;
  spentUsd: number;
  reservedUsd: number;
}

/** Which targets hold the reservation: false where the store failed open and the call went unmetered. */
type Reservation = { ok: true; held: boolean[] } | Refusal;

/**
 * Which targets hold the call, one slot each, made at its length: an array
 * pushed to from empty takes room for 17 and kept it while the call was in
 * flight (152 bytes a call for one limit, against 24).
 */
const heldFor = (targets: readonly unknown[]): boolean[] => new Array<boolean>(targets.length).fill(false);

const refusal = (blocked: Applicable, bucket: BudgetBucket): Refusal => ({ ok: false, blocked, spentUsd: bucket.spentUsd, reservedUsd: heldUsd(bucket) });

/** A call's reservation, and the targets it was written to. */
interface Admitted {
  hold: Hold;
  held: boolean[];
}

const minuteMs = 60_000;
const ignore = (): void => {};

/**
 * Spending limits, enforced before a call is sent: the call's worst-case
 * cost (its output at the cap) is reserved atomically in every applicable
 * limit through the store's `update`, and settled to the real cost when the
 * call is done (released if it failed with no usage), so any number of
 * concurrent calls can never spend past a limit. A reservation is held
 * until the call settles, or at most until the call's deadline or
 * `holdMs` (so the holds of a process that crashed are released), and
 * costs the same however many calls are in flight. Periods are UTC hours,
 * days or months on the pipeline's clock; each record expires `2 × holdMs`
 * after its period ends. State lives under `sluice:cost:` in the call's store
 * (or `store`); if the store fails before a call is sent, the call is
 * refused (`onStoreError: 'closed'`, the default).
 *
 * Place it after `trimContext` (it prices the trimmed prompt and reuses its
 * count) and before `retry` (one reservation covers every attempt).
 *
 * @param options - the limit(s), what to do on exceeding, warning thresholds, prices, how long a hold lives, store and its failure policy
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

  const holdMs = config.holdMs ?? 15 * minuteMs;
  // The period each limit is in, kept until it ends: most calls fall in the same one.
  const periods: Array<PeriodBucket | undefined> = limits.map(() => undefined);
  // The last target of each limit, reused while the key and period stay the
  // same (a global limit: every call), so a call builds no record key.
  const lastTargets: Array<Applicable | undefined> = limits.map(() => undefined);
  let lastAll: Applicable[] | undefined;
  // Hold ids unique across processes sharing a store, without a random UUID per call.
  const holdPrefix = `${crypto.randomUUID()}:`;
  let holds = 0;

  function target(ctx: CompletionContext, now: number, index: number): Applicable {
    const limit = limits[index] as BudgetLimit;
    const state = states[index] as KeyedState;
    const key = state.keyOf(ctx);
    let bucket = periods[index];
    if (!bucket || now < bucket.start || now >= bucket.end) periods[index] = bucket = periodBucket(limit.period, now);
    const last = lastTargets[index];
    if (last !== undefined && last.key === key && last.periodId === bucket.id) return last;
    // Kept until every hold made in the period has expired, so a call settling late still finds its hold.
    const expiresAt = bucket.end + 2 * holdMs;
    const record = `${name}:${key}:${limit.period}:${bucket.id}`;
    const made: Applicable = { limit, state, key, record, expiresAt, periodId: bucket.id, resetsAt: bucket.end };
    lastTargets[index] = made;
    return made;
  }

  function applicable(ctx: CompletionContext, now: number): Applicable[] {
    if (limits.length === 1) {
      const only = target(ctx, now, 0);
      // Never changed by a caller: reused as long as its one target is.
      if (lastAll?.[0] !== only) lastAll = [only];
      return lastAll;
    }
    const targets: Applicable[] = [];
    for (let index = 0; index < limits.length; index++) targets.push(target(ctx, now, index));
    return targets;
  }

  function worstCase(ctx: CompletionContext): number {
    const match = resolvePrice(prices, ctx.request.model, policy);
    if (!match) {
      if (policy === 'warn') ctx.events.emit('price-unknown', { id: ctx.id, model: ctx.request.model, by: 'budget' });
      return 0;
    }
    return worstCaseUsd(match, ctx.request, promptCount(ctx).count);
  }

  /**
   * Gives the call's hold back to every target that holds it, skipping a
   * record that has already expired: its period is over, and a write would
   * bring it back.
   */
  async function release(ctx: CompletionContext, targets: Applicable[], hold: Hold, held: boolean[]): Promise<void> {
    const now = ctx.clock.now();
    const writes: Array<Promise<BudgetBucket | undefined>> = [];
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Applicable;
      if (!held[index] || target.expiresAt <= now) continue;
      writes.push(target.state.update<BudgetBucket>(ctx, target.record, releaseHold(hold, now), { ttlMs: target.expiresAt - now, phase: 'settle' }));
    }
    await Promise.all(writes);
  }

  /**
   * Reserves `hold` in every target, one after another, from target `from`
   * on (`held` says which of the earlier ones hold it); on a refusal or a
   * failure, releases what the call holds in the earlier ones.
   */
  async function reserveAll(ctx: CompletionContext, targets: Applicable[], hold: Hold, force: boolean, from = 0, held = heldFor(targets)): Promise<Reservation> {
    for (let index = from; index < targets.length; index++) {
      const target = targets[index] as Applicable;
      const now = ctx.clock.now();
      let bucket: BudgetBucket | undefined;
      try {
        bucket = await target.state.update<BudgetBucket>(ctx, target.record, reserveHold(hold, target.limit.limitUsd, force, now), {
          ttlMs: target.expiresAt - now,
        });
      } catch (error) {
        await release(ctx, targets.slice(0, index), hold, held);
        throw error;
      }
      const refusing = refused(ctx, targets, hold, held, index, bucket);
      if (refusing) return refusing;
    }
    return { ok: true, held };
  }

  /**
   * Reserves `hold` in every target, as {@link reserveAll} does, at once on
   * an in-process store (no promise or await of its own), in place on the
   * memory store; a target whose store answers later, and everything after
   * it, goes the async way.
   */
  function reserveNow(ctx: CompletionContext, targets: Applicable[], hold: Hold, now: number): Reservation | Promise<Reservation> {
    const held = heldFor(targets);
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Applicable;
      // In place on the memory store: what the record says is read before anything else can run.
      const bucket = target.state.updateNow<BudgetBucket>(ctx, target.record, reserveHold(hold, target.limit.limitUsd, false, now), {
        ttlMs: target.expiresAt - now,
        now,
        inPlace: true,
      });
      if (bucket instanceof Promise) {
        return bucket.then(
          (answered) => refused(ctx, targets, hold, held, index, answered) ?? reserveAll(ctx, targets, hold, false, index + 1, held),
          async (error: unknown) => {
            await release(ctx, targets.slice(0, index), hold, held);
            throw error;
          },
        );
      }
      const refusing = refused(ctx, targets, hold, held, index, bucket);
      if (refusing) return refusing;
    }
    return { ok: true, held };
  }

  /**
   * Notes whether target `index` holds the call now; undefined when it
   * admitted `hold` (or its store failed open), else its refusal, read at
   * once, given once the earlier targets gave the hold back.
   */
  function refused(ctx: CompletionContext, targets: Applicable[], hold: Hold, held: boolean[], index: number, bucket: BudgetBucket | undefined): Promise<Refusal> | undefined {
    // Undefined: the store failed under the 'open' policy, so this limit lets the call through unmetered.
    held[index] = bucket !== undefined;
    if (bucket === undefined || bucket.admitted === hold.id) return undefined;
    const refusing = refusal(targets[index] as Applicable, bucket);
    return release(ctx, targets.slice(0, index), hold, held).then(() => refusing);
  }

  /**
   * Settles the call's hold in every target it holds and announces the
   * warnings it crossed; on an in-process store at once (no promise for the
   * call's settlement to wait on), in place on the memory store.
   */
  function settleAll(ctx: CompletionContext, targets: Applicable[], hold: Hold, held: boolean[], usd: number): Promise<void> | undefined {
    const now = ctx.clock.now();
    let pending: Array<Promise<void>> | undefined;
    for (let index = 0; index < targets.length; index++) {
      const target = targets[index] as Applicable;
      // A record already expired is left alone: its period is over, and a write would bring it back.
      if (target.expiresAt <= now) continue;
      const update = settleHold(hold, held[index] ?? false, usd, target.limit.limitUsd, warnAt, now);
      // In place on the memory store: its warnings are read at once.
      const bucket = target.state.updateNow<BudgetBucket>(ctx, target.record, update, { ttlMs: target.expiresAt - now, phase: 'settle', now, inPlace: true });
      if (!(bucket instanceof Promise)) {
        warn(ctx, target, hold, bucket);
        continue;
      }
      (pending ??= []).push(bucket.then((answered) => warn(ctx, target, hold, answered)));
    }
    if (pending === undefined) return undefined;
    return pending.length === 1 ? (pending[0] as Promise<void>) : Promise.all(pending).then(ignore);
  }

  /** Emits `budget-warning` for each threshold this call's settlement crossed in `target`. */
  function warn(ctx: CompletionContext, target: Applicable, hold: Hold, bucket: BudgetBucket | undefined): void {
    if (!bucket) return;
    const { limit } = target;
    for (const threshold in bucket.warned) {
      if (bucket.warned[threshold] !== hold.id) continue;
      ctx.events.emit('budget-warning', {
        id: ctx.id, key: target.key, period: limit.period, periodId: target.periodId,
        threshold: Number(threshold), limitUsd: limit.limitUsd, spentUsd: bucket.spentUsd,
      });
    }
  }

  function details(refused: Refusal, requestedUsd: number): BudgetExceededDetails {
    const { blocked, spentUsd, reservedUsd } = refused;
    return { key: blocked.key, period: blocked.limit.period, limitUsd: blocked.limit.limitUsd, spentUsd, reservedUsd, requestedUsd, resetsAt: blocked.resetsAt };
  }

  /**
   * Reserves the call's worst case in every target, or applies `onExceed`:
   * downgrades (rewriting `ctx.request.model`), forces the hold, or throws.
   */
  async function admit(
    ctx: CompletionContext,
    targets: Applicable[],
    id: string,
    slot: number,
    first?: { hold: Hold; reservation: Reservation },
  ): Promise<Admitted> {
    const requested = ctx.request.model;
    let hold: Hold = first?.hold ?? { id, usd: worstCase(ctx), slot };
    let reservation = first?.reservation ?? (await reserveAll(ctx, targets, hold, false));
    if (reservation.ok) return { hold, held: reservation.held };
    const { resetsAt: _resetsAt, ...refused } = details(reservation, hold.usd);
    if (onExceed === 'warn') {
      ctx.events.emit('budget-reject', { ...refused, id: ctx.id, model: requested, action: 'warn', downgradedTo: undefined });
      const forced = await reserveAll(ctx, targets, hold, true);
      return { hold, held: forced.ok ? forced.held : [] };
    }
    for (const model of downgradeTo) {
      if (model === ctx.request.model) continue;
      ctx.request = { ...ctx.request, model };
      hold = { id, usd: worstCase(ctx), slot };
      reservation = await reserveAll(ctx, targets, hold, false);
      if (reservation.ok) {
        ctx.events.emit('budget-reject', { ...refused, id: ctx.id, model: requested, action: 'downgrade', downgradedTo: model });
        return { hold, held: reservation.held };
      }
    }
    const final = details(reservation, hold.usd);
    ctx.request = { ...ctx.request, model: requested };
    const { resetsAt: _at, ...payload } = final;
    ctx.events.emit('budget-reject', { ...payload, id: ctx.id, model: requested, action: 'reject', downgradedTo: undefined });
    throw new BudgetExceededError(final);
  }

  /**
   * `admit`, decided at once on an in-process store: the usual call
   * reserves without a promise or an await of its own.
   */
  function admitNow(ctx: CompletionContext, targets: Applicable[], id: string, slot: number, now: number): Admitted | Promise<Admitted> {
    const hold: Hold = { id, usd: worstCase(ctx), slot };
    const decide = (reservation: Reservation): Admitted | Promise<Admitted> =>
      reservation.ok ? { hold, held: reservation.held } : admit(ctx, targets, id, slot, { hold, reservation });
    const reserved = reserveNow(ctx, targets, hold, now);
    return reserved instanceof Promise ? reserved.then(decide) : decide(reserved);
  }

  /** Runs the rest of the pipeline with the call admitted, and settles its hold when the call settles. */
  function pass(ctx: CompletionContext, next: () => Promise<void>, targets: Applicable[], requested: string, admitted: Admitted): Promise<void> {
    const { hold, held } = admitted;
    const downgradedFrom = ctx.request.model === requested ? undefined : requested;
    ctx.state.budget = { model: ctx.request.model, reservedUsd: hold.usd, downgradedFrom };

    // One listener, registered once: on the way out, or on the way back of an error; made then,
    // so that a call waiting on its upstream does not hold it.
    // Bound to the response next() produced: a stream settles when read to
    // its end or cut. On an error, bound to the response next() last
    // produced, if any, and costed as trackCost costs it: a stream the
    // upstream accepted and that failed at its first chunk, read inside a
    // retry, was billed for its prompt. With no response at all, it runs
    // when the call settles, at $0.
    const bind = () =>
      ctx.onSettled((settlement: Settlement) =>
        settleAll(ctx, targets, hold, held, settledUsd(ctx, settlement, prices.lookup(ctx.request.model)) ?? 0),
      );
    // Not async: one `then`, where an async frame and its await cost a promise more and held a frame per call in flight.
    return afterNext(next, bind, (error: unknown) => {
      bind();
      throw error;
    });
  }

  return keepsChainRules(function budget(ctx: CompletionContext, next: () => Promise<void>): Promise<void> {
    let targets: Applicable[];
    let requested: string;
    let admitted: Admitted | Promise<Admitted>;
    try {
      const now = ctx.clock.now();
      targets = applicable(ctx, now);
      requested = ctx.request.model;
      admitted = admitNow(ctx, targets, `${holdPrefix}${(++holds).toString(36)}`, holdSlot(now, holdMs, ctx.deadline), now);
    } catch (error) {
      return Promise.reject(error);
    }
    if (admitted instanceof Promise) return admitted.then((held) => pass(ctx, next, targets, requested, held));
    return pass(ctx, next, targets, requested, admitted);
  });
}
