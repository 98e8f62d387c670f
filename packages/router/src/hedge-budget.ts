/** The hedge budget: tokens earned by calls, spent by hedges. Plain JSON. */
export interface HedgeBudgetState {
  tokens: number;
}

/** Most tokens the budget saves up, so a quiet spell cannot fund a burst of hedges. */
export const hedgeBudgetCapacity = 10;

/**
 * A call went through: it earns `ratio` of a hedge. Pure.
 *
 * @param state - the budget before
 * @param ratio - hedges earned per call
 */
export function depositHedge(state: HedgeBudgetState, ratio: number): HedgeBudgetState {
  return { tokens: Math.min(hedgeBudgetCapacity, state.tokens + ratio) };
}

/**
 * Spends one hedge if the budget holds one. Pure: returns the new state
 * and whether the hedge may go. With calls depositing `ratio` each, hedges
 * never exceed `ratio` times the calls made, plus nothing: the budget
 * starts empty.
 *
 * @param state - the budget before
 */
export function withdrawHedge(state: HedgeBudgetState): { state: HedgeBudgetState; allowed: boolean } {
  if (state.tokens < 1) return { state, allowed: false };
  return { state: { tokens: state.tokens - 1 }, allowed: true };
}
