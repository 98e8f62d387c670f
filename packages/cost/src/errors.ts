import { SluiceError } from '@sluice/core';
import type { BudgetPeriod } from './budget-period.js';

/**
 * The price table has no entry for a model, and the `unknownModel` policy
 * is `'error'` (the default): sluice refuses to price a call at a silent $0.
 * Not retryable.
 *
 * @example
 * ```ts
 * try { estimateCost({ model: 'my-finetune', messages }); }
 * catch (error) { if (error instanceof UnknownModelError) console.log(error.model); }
 * ```
 */
export class UnknownModelError extends SluiceError {
  static override readonly brand: string = 'UnknownModelError';
  /**
   * @param model - the model name that matched no entry (after snapshot and prefix matching)
   */
  constructor(readonly model: string) {
    super(
      'UNKNOWN_MODEL',
      `no price for model "${model}": add it with priceTable({ '${model}': { … } }) or choose unknownModel: 'warn' | 'free'`,
    );
  }
}

/** What a {@link BudgetExceededError} knows about the limit it hit. */
export interface BudgetExceededDetails {
  /** The limit's state key under its key option: `global`, `tenant:acme`, `model:gpt-4.1`. */
  key: string;
  period: BudgetPeriod;
  limitUsd: number;
  /** Settled spend in the current period. */
  spentUsd: number;
  /** Worst-case cost of the calls in flight, reserved but not settled yet. */
  reservedUsd: number;
  /** The worst-case cost of the call that was refused. */
  requestedUsd: number;
  /** When the period ends and the limit frees up, `clock.now()` time (epoch ms). */
  resetsAt: number;
}

/**
 * A call's worst-case cost does not fit what is left of a budget (spent plus
 * reserved by calls in flight). Thrown before anything is sent. Not
 * retryable, and final: no layer may send the call again, here or on
 * another upstream (a router's fallback included), before the period ends
 * (`resetsAt`).
 *
 * @example
 * ```ts
 * await expect(llm.complete(request, { tags: { tenant: 'acme' } })).rejects.toMatchObject({ code: 'BUDGET_EXCEEDED' });
 * ```
 */
export class BudgetExceededError extends SluiceError implements BudgetExceededDetails {
  static override readonly brand: string = 'BudgetExceededError';
  readonly key: string;
  readonly period: BudgetPeriod;
  readonly limitUsd: number;
  readonly spentUsd: number;
  readonly reservedUsd: number;
  readonly requestedUsd: number;
  readonly resetsAt: number;

  /**
   * @param details - the limit, its key and period, and the spend that filled it
   */
  constructor(details: BudgetExceededDetails) {
    super(
      'BUDGET_EXCEEDED',
      `budget of $${details.limitUsd} per ${details.period} (${details.key}) exceeded: ` +
        `$${round(details.spentUsd)} spent, $${round(details.reservedUsd)} reserved, $${round(details.requestedUsd)} requested`,
      // 429, as a spent quota is answered by the providers and gateways users know.
      { final: true, httpStatus: 429 },
    );
    this.key = details.key;
    this.period = details.period;
    this.limitUsd = details.limitUsd;
    this.spentUsd = details.spentUsd;
    this.reservedUsd = details.reservedUsd;
    this.requestedUsd = details.requestedUsd;
    this.resetsAt = details.resetsAt;
  }
}

const round = (usd: number) => Number(usd.toPrecision(6));

/**
 * `loadLiteLLMPrices` could not fetch its URL, or what came back was not
 * JSON. Retryable: the file may be reachable later; meanwhile the prices
 * you already have stay in force.
 *
 * @example
 * ```ts
 * const fresh = await loadLiteLLMPrices(url).catch((error) => (error instanceof PricesUnavailableError ? undefined : Promise.reject(error)));
 * ```
 */
export class PricesUnavailableError extends SluiceError {
  static override readonly brand: string = 'PricesUnavailableError';
  /**
   * @param message - what failed, naming the URL
   * @param cause - the underlying fetch or parse error
   */
  constructor(message: string, cause?: unknown) {
    super('PRICES_UNAVAILABLE', message, { cause, retryable: true });
  }
}
