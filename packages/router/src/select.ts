import type { ResolvedDeployment, RoutingStrategy } from './options.js';

/** A deployment that could take the call now, with what the strategies compare. */
export interface Candidate {
  deployment: ResolvedDeployment;
  inFlight: number;
  /** What `latency` routing compares (its EWMA of time to first chunk, 0 to measure it); undefined for the other strategies. */
  latencyMs: number | undefined;
}

/**
 * Picks one of `candidates` (not empty) by `strategy`.
 *
 * `weighted` is smooth weighted round robin (nginx's): every pick adds
 * each candidate's weight to its credit and takes the richest, which then
 * pays the total. Over any run of picks each deployment's share is within
 * one pick of its weight, where a weighted random draw only converges.
 * Credits live in `credit` (per router, in process); a deployment passed
 * over (cooling, full) earns nothing meanwhile, so it does not come back
 * with a burst.
 *
 * @param strategy - how to compare
 * @param candidates - the deployments that can take the call
 * @param credit - the round robin's credits, updated
 * @param random - ties of `least-busy` and `latency` are broken at random, so equal deployments share the load
 * @param buffer - `latency` picks among all within this fraction of the fastest
 */
export function selectDeployment(
  strategy: RoutingStrategy,
  candidates: readonly Candidate[],
  credit: Map<string, number>,
  random: () => number,
  buffer = 0,
): ResolvedDeployment {
  if (candidates.length === 1) return (candidates[0] as Candidate).deployment;
  switch (strategy) {
    case 'weighted':
      return roundRobin(candidates, credit);
    case 'least-busy':
      return lowest(candidates, (candidate) => candidate.inFlight / candidate.deployment.weight, random);
    case 'latency':
      // Unmeasured and stale deployments score 0, the fastest, so each gets measured.
      return lowest(candidates, (candidate) => candidate.latencyMs ?? 0, random, buffer);
    case 'cost':
      return lowest(candidates, (candidate) => candidate.deployment.priceUsd, () => 0);
  }
}

function roundRobin(candidates: readonly Candidate[], credit: Map<string, number>): ResolvedDeployment {
  let total = 0;
  let best: ResolvedDeployment | undefined;
  let bestCredit = -Infinity;
  for (const { deployment } of candidates) {
    total += deployment.weight;
    const next = (credit.get(deployment.id) ?? 0) + deployment.weight;
    credit.set(deployment.id, next);
    if (next > bestCredit) {
      bestCredit = next;
      best = deployment;
    }
  }
  const picked = best as ResolvedDeployment;
  credit.set(picked.id, bestCredit - total);
  return picked;
}

/** A candidate of the lowest score, at random among ties (and among those within `buffer` of the lowest). */
function lowest(candidates: readonly Candidate[], score: (candidate: Candidate) => number, random: () => number, buffer = 0): ResolvedDeployment {
  let best: Candidate[] = [];
  let bestScore = Infinity;
  if (buffer > 0) {
    for (const candidate of candidates) bestScore = Math.min(bestScore, score(candidate));
    const within = bestScore * (1 + buffer);
    for (const candidate of candidates) if (score(candidate) <= within) best.push(candidate);
  } else {
    for (const candidate of candidates) {
      const value = score(candidate);
      if (value < bestScore) {
        bestScore = value;
        best = [candidate];
      } else if (value === bestScore) best.push(candidate);
    }
  }
  if (best.length === 0) best = [...candidates];
  const index = Math.min(best.length - 1, Math.floor(random() * best.length));
  return (best[index] as Candidate).deployment;
}
