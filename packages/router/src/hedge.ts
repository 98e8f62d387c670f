import { type CompletionContext, type SluiceError, toSluiceError } from '@sluice/core';
import type { Picked } from './deployment-pool.js';
import type { Answer } from './hop.js';
import type { ResolvedDeployment } from './options.js';

/** One hop in flight, cancellable on its own. */
export interface RunningHop {
  deployment: ResolvedDeployment;
  answer: Promise<Answer>;
  cancel(): void;
}

/** What the router gives {@link race}. */
export interface RaceHooks {
  /** Starts a hop to the picked deployment (its slot taken) with its own cancel. */
  start(picked: Picked): RunningHop;
  /** The delay before hedging, now. */
  delayMs(): number;
  /** Picks the hedge's deployment and takes a hedge from the budget; undefined when none may go (it reports why). */
  second(primary: ResolvedDeployment): Picked | undefined;
  /** A hedge was sent. */
  hedged(hop: RunningHop, primary: ResolvedDeployment, delayMs: number): void;
  /** The loser of the pair, cancelled while still waiting for its answer. */
  lost(hop: RunningHop, winner: ResolvedDeployment): void;
  /** One of the pair failed and the call goes on without it: the other answered, or failed too and its error is thrown. */
  failedAside(hop: RunningHop, error: SluiceError): void;
}

/**
 * Sends the call to `primary`; if it has not answered after the hedge
 * delay, sends it to a second deployment too. The first answer wins and
 * the other is cancelled (its request aborted, so its socket is released;
 * its deployment's own middleware settle it and count its cost). A hop
 * that fails while the other goes on is reported through `failedAside`.
 * When both fail, the primary's error is thrown (the hedge's reported),
 * so the error the router falls back on is the deployment it names.
 *
 * @param ctx - the outer call
 * @param primary - the deployment chosen first
 * @param hooks - how hops are started, picked and reported
 * @throws the primary's error when it fails before the delay, or when both fail
 */
export async function race(ctx: CompletionContext, primary: Picked, hooks: RaceHooks): Promise<Answer> {
  const first = hooks.start(primary);
  const delayMs = hooks.delayMs();
  const settledFirst = first.answer.then(
    () => true,
    () => true,
  );
  let timer: unknown;
  const due = new Promise<boolean>((resolve) => {
    timer = ctx.clock.setTimeout(() => resolve(false), delayMs);
  });
  const answeredInTime = await Promise.race([settledFirst, due]);
  ctx.clock.clearTimeout(timer as never);
  if (answeredInTime) return first.answer;
  const picked = hooks.second(primary.deployment);
  if (!picked) return first.answer;
  const second = hooks.start(picked);
  hooks.hedged(second, primary.deployment, delayMs);
  return firstAnswer(first, second, hooks);
}

/** The first of two hops to answer; the other is cancelled, or discarded if it answered too. */
async function firstAnswer(a: RunningHop, b: RunningHop, hooks: RaceHooks): Promise<Answer> {
  const failures = new Map<RunningHop, SluiceError>();
  const winner = await new Promise<{ hop: RunningHop; answer: Answer } | undefined>((resolve) => {
    let failed = 0;
    for (const hop of [a, b]) {
      hop.answer.then(
        (answer) => resolve({ hop, answer }),
        (error: unknown) => {
          failures.set(hop, toSluiceError(error));
          if (++failed === 2) resolve(undefined);
        },
      );
    }
  });
  if (!winner) {
    hooks.failedAside(b, failures.get(b) as SluiceError);
    throw failures.get(a) as SluiceError;
  }
  const loser = winner.hop === a ? b : a;
  const failed = failures.get(loser);
  if (failed) hooks.failedAside(loser, failed);
  else {
    loser.cancel();
    hooks.lost(loser, winner.answer.deployment);
  }
  // The loser may have answered in the same turn: its stream must still be closed.
  loser.answer.then(
    (answer) => answer.discard(),
    () => {},
  );
  return winner.answer;
}
