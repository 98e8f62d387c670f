/*
 * The failure-rate window of a circuit record: `buckets` slices of
 * `windowMs / buckets`, each `[slice index, calls, failures]`, so a circuit's
 * memory is constant however many calls it sees. The functions change the
 * record they are given: `circuit.ts` hands them its own copy.
 */
/** The failure-rate rule, every default filled in; internal. */
export interface FailureRateRules {
  threshold: number;
  windowMs: number;
  minimumCalls: number;
  buckets: number;
}

/** What of a circuit record the window reads and writes: at most `buckets` entries of `[slice index, calls, failures]`. */
export interface WindowRecord {
  window: Array<[slice: number, calls: number, failures: number]>;
}

/**
 * Takes back a success counted at `at`, if its slice is still in the
 * window, so the failure that replaces it is the call's only count. Once
 * that slice has left the window there is nothing to take back. Internal.
 *
 * @param record - the circuit, changed in place (a copy the caller owns)
 * @param at - when the success was counted
 * @param rate - the failure-rate rule
 */
export function uncount(record: WindowRecord, at: number, rate: FailureRateRules): void {
  const index = Math.floor(at / (rate.windowMs / rate.buckets));
  const slice = record.window.find(([candidate]) => candidate === index);
  if (slice && slice[1] > slice[2]) slice[1] -= 1;
}

/**
 * Adds a call to the window's current slice, drops the slices that left
 * the window, and returns the window's totals; internal.
 *
 * @param record - the circuit, changed in place (a copy the caller owns)
 * @param now - the clock's time
 * @param failed - whether the call failed
 * @param rate - the failure-rate rule
 */
export function countCall(
  record: WindowRecord,
  now: number,
  failed: boolean,
  rate: FailureRateRules,
): { calls: number; failures: number } {
  const slice = Math.floor(now / (rate.windowMs / rate.buckets));
  // The slices that left the window go, in place: the record is the caller's own.
  const { window } = record;
  let kept = 0;
  let current: [number, number, number] | undefined;
  for (const entry of window) {
    if (entry[0] <= slice - rate.buckets) continue;
    window[kept++] = entry;
    if (entry[0] === slice) current = entry;
  }
  window.length = kept;
  if (current) {
    current[1] += 1;
    current[2] += failed ? 1 : 0;
  } else window.push([slice, 1, failed ? 1 : 0]);
  return windowTotals(record, now, rate);
}

/**
 * The calls and failures of the window at `now`; internal.
 *
 * @param record - the circuit
 * @param now - the clock's time
 * @param rate - the failure-rate rule
 * @example
 * ```ts
 * windowTotals(record, Date.now(), rate); // { calls: 20, failures: 9 }
 * ```
 */
export function windowTotals(
  record: WindowRecord,
  now: number,
  rate: FailureRateRules,
): { calls: number; failures: number } {
  const slice = Math.floor(now / (rate.windowMs / rate.buckets));
  let calls = 0;
  let failures = 0;
  for (const [index, c, f] of record.window) {
    if (index > slice - rate.buckets && index <= slice) {
      calls += c;
      failures += f;
    }
  }
  return { calls, failures };
}
