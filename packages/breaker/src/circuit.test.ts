import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  admit,
  type CallOutcome,
  type CircuitRecord,
  type CircuitRules,
  isolate,
  isolationMs,
  lifetimeMs,
  probeLeaseMs,
  reset,
  runMemoryMs,
  settle,
  type Ticket,
} from './circuit.js';
import { snapshot } from './circuit-snapshot.js';

const rules = (overrides: Partial<CircuitRules> = {}): CircuitRules => ({
  failures: 10,
  failureRate: undefined,
  openMs: 30_000,
  backoff: undefined,
  probes: 1,
  ...overrides,
});

/** Admits one call at `now` and settles it with `outcome`; returns the record after. */
function call(record: CircuitRecord | undefined, outcome: CallOutcome, now: number, r: CircuitRules, id = 'c') {
  const admitted = admit(record, id, now, r);
  if (!admitted.ticket) return { record: admitted.record, admitted: false, transitions: admitted.transitions };
  const settled = settle(admitted.record, admitted.ticket, outcome, now, r);
  return { record: settled.record, admitted: true, transitions: [...admitted.transitions, ...settled.transitions] };
}

describe('circuit: consecutive failures', () => {
  it('opens exactly when a run of `failures` consecutive failures completes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.array(fc.boolean(), { maxLength: 60 }), (failures, outcomes) => {
        const r = rules({ failures });
        let record: CircuitRecord | undefined;
        let run = 0;
        for (const failed of outcomes) {
          const result = call(record, failed ? 'failure' : 'success', 0, r);
          record = result.record;
          run = failed ? run + 1 : 0;
          expect(record.state).toBe(run >= failures ? 'open' : 'closed');
          if (record.state === 'open') {
            expect(result.transitions).toEqual([{ to: 'open', reason: 'consecutive', failures, openMs: 30_000 }]);
            return;
          }
        }
      }),
    );
  });

  it('ignores results that count neither way', () => {
    let record = call(undefined, 'failure', 0, rules({ failures: 2 })).record;
    record = call(record, 'ignore', 0, rules({ failures: 2 })).record;
    expect(record.failures).toBe(1);
    expect(call(record, 'failure', 0, rules({ failures: 2 })).record.state).toBe('open');
  });

  it('drops a late result of a call admitted before the circuit opened and closed again', () => {
    const r = rules({ failures: 1, openMs: 10 });
    const early = admit(undefined, 'early', 0, r);
    let record = call(early.record, 'failure', 0, r, 'other').record; // opens
    record = call(record, 'success', 10, r, 'probe').record; // probes and closes
    expect(record.state).toBe('closed');
    const late = settle(record, early.ticket as Ticket, 'failure', 11, r);
    expect(late.record).toEqual(record);
  });
});

describe('circuit: failure rate', () => {
  const rate = { threshold: 0.5, windowMs: 60_000, minimumCalls: 20, buckets: 10 };

  it('never opens below minimumCalls, and opens at the threshold once there', () => {
    const r = rules({ failures: false, failureRate: rate });
    let record: CircuitRecord | undefined;
    for (let i = 0; i < 19; i++) record = call(record, 'failure', i, r).record;
    expect(record?.state).toBe('closed');
    const result = call(record, 'success', 19, r);
    expect(result.record.state).toBe('open');
    expect(result.transitions).toEqual([{ to: 'open', reason: 'failure-rate', failures: 19, openMs: 30_000 }]);
  });

  it('settles in place to the very record a copying settlement gives, and changes nothing it was not handed', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 9_000 }), outcome: fc.constantFrom<CallOutcome>('success', 'failure', 'ignore') }), { maxLength: 120 }),
        fc.boolean(),
        (steps, consecutive) => {
          const r = rules({ failures: consecutive ? 4 : false, failureRate: rate });
          let copied: CircuitRecord | undefined;
          let inPlace: CircuitRecord | undefined;
          let now = 0;
          for (const [index, step] of steps.entries()) {
            now += step.gap;
            const ticket: Ticket = { kind: 'call', at: now };
            const before = JSON.stringify(copied);
            const pure = settle(copied, ticket, step.outcome, now, r, { pending: index % 3 });
            // A copying settlement leaves what it was given as it was.
            expect(JSON.stringify(copied)).toBe(before);
            const changed = settle(inPlace, ticket, step.outcome, now, r, { pending: index % 3 }, inPlace ? true : undefined);
            if (inPlace) expect(changed.record).toBe(inPlace);
            expect(JSON.stringify(changed.record)).toBe(JSON.stringify(pure.record));
            expect(changed.transitions).toEqual(pure.transitions);
            copied = pure.record;
            inPlace = changed.record;
            // An open circuit is settled by the store's admit and reset, which copy: start both again from closed.
            if (copied.state !== 'closed') copied = inPlace = undefined;
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps at most `buckets` slices and counts exactly the calls of the live slices', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ gap: fc.integer({ min: 0, max: 20_000 }), failed: fc.boolean() }), { maxLength: 80 }),
        (steps) => {
          // A threshold above 1 never trips, so every call lands in the window.
          const r = rules({ failures: false, failureRate: { ...rate, threshold: 1.01 } });
          let record: CircuitRecord | undefined;
          let now = 0;
          const seen: Array<{ at: number; failed: boolean }> = [];
          for (const step of steps) {
            now += step.gap;
            record = call(record, step.failed ? 'failure' : 'success', now, r).record;
            seen.push({ at: now, failed: step.failed });
            expect(record.window.length).toBeLessThanOrEqual(rate.buckets);
            const slice = (t: number) => Math.floor(t / (rate.windowMs / rate.buckets));
            const live = seen.filter(({ at }) => slice(at) > slice(now) - rate.buckets);
            expect(snapshot('k', record, now, r).window).toMatchObject({
              calls: live.length,
              failures: live.filter(({ failed }) => failed).length,
            });
          }
        },
      ),
    );
  });
});

describe('circuit: calls in flight and amended results', () => {
  const rate = { threshold: 0.5, windowMs: 60_000, minimumCalls: 20, buckets: 10 };
  const ticket: Ticket = { kind: 'call', at: 0 };

  it('opens on the rate only when it is reached even if every call in flight succeeds', () => {
    const r = rules({ failures: false, failureRate: rate });
    let record: CircuitRecord | undefined;
    for (let i = 0; i < 19; i++) record = settle(record, ticket, 'failure', i, r, { pending: 30 }).record;
    expect(settle(record, ticket, 'failure', 19, r, { pending: 30 }).record.state).toBe('closed'); // 20 of 50
    expect(settle(record, ticket, 'failure', 19, r, { pending: 20 }).record.state).toBe('open'); // 20 of 40
  });

  it('replaces a counted success with the failure that amends it, counting the call once', () => {
    const r = rules({ failures: 5, failureRate: { ...rate, threshold: 1 } });
    const counted = settle(undefined, ticket, 'success', 0, r);
    expect(counted.mark).toEqual({ at: 0, judged: 1, run: 0 });
    const amended = settle(counted.record, ticket, 'failure', 3_000, r, { amends: counted.mark });
    expect(snapshot('k', amended.record, 3_000, r).window).toEqual({ calls: 1, failures: 1, rate: 1 });
    // Once the success's slice has left the window, the failure is the call's only trace.
    const late = settle(counted.record, ticket, 'failure', 70_000, r, { amends: counted.mark });
    expect(snapshot('k', late.record, 70_000, r).window).toEqual({ calls: 1, failures: 1, rate: 1 });
  });

  it('lets an amending failure rejoin the run its success interrupted, unless something was counted since', () => {
    const r = rules({ failures: 3 });
    let record = settle(undefined, ticket, 'failure', 0, r).record;
    record = settle(record, ticket, 'failure', 0, r).record;
    const counted = settle(record, ticket, 'success', 0, r);
    expect(counted.record.failures).toBe(0);
    expect(settle(counted.record, ticket, 'failure', 0, r, { amends: counted.mark }).record).toMatchObject({ state: 'open', failures: 3 });
    const since = settle(counted.record, ticket, 'success', 0, r).record;
    expect(settle(since, ticket, 'failure', 0, r, { amends: counted.mark }).record).toMatchObject({ state: 'closed', failures: 1 });
  });
});

describe('circuit: open, half-open, probes', () => {
  it('turns half-open when the open time is over, not a millisecond before', () => {
    const r = rules({ failures: 1 });
    const open = call(undefined, 'failure', 0, r).record;
    expect(admit(open, 'a', 29_999, r)).toMatchObject({ ticket: undefined, changed: false, transitions: [] });
    expect(admit(open, 'a', 30_000, r)).toMatchObject({ ticket: { kind: 'probe', id: 'a' }, changed: true, transitions: [{ to: 'half-open' }] });
  });

  it('never has more probes out than allowed, and closes only after that many succeeded', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 4 }),
        fc.array(
          fc.oneof(
            fc.constant({ op: 'admit' as const }),
            fc.record({ op: fc.constant('settle' as const), pick: fc.nat(), outcome: fc.constantFrom<CallOutcome>('success', 'failure', 'ignore') }),
          ),
          { maxLength: 40 },
        ),
        (probes, ops) => {
          const r = rules({ failures: 1, probes, openMs: 1 });
          let record = call(undefined, 'failure', 0, r).record;
          let now = 1;
          const out: Ticket[] = [];
          for (const [index, op] of ops.entries()) {
            if (op.op === 'admit') {
              const step = admit(record, `p${index}`, now, r);
              record = step.record;
              if (step.ticket) out.push(step.ticket);
            } else if (out.length > 0) {
              const [ticket] = out.splice(op.pick % out.length, 1) as [Ticket];
              const live = ticket.kind === 'probe' && record.state === 'half-open' && record.probes.some(([id]) => id === ticket.id);
              const passedBefore = record.passed;
              const step = settle(record, ticket, op.outcome, now, r);
              record = step.record;
              if (step.transitions.some((t) => t.to === 'closed')) {
                expect({ live, outcome: op.outcome, passed: passedBefore + 1 }).toEqual({ live: true, outcome: 'success', passed: probes });
              }
              if (step.transitions.some((t) => t.to === 'open' && t.reason === 'probe-failed')) {
                expect({ live, outcome: op.outcome }).toEqual({ live: true, outcome: 'failure' });
              }
              if (record.state === 'open') now += record.openMs ?? 0; // let it turn half-open again
            }
            if (record.state === 'half-open') expect(record.probes.length + record.passed).toBeLessThanOrEqual(probes);
          }
        },
      ),
    );
  });

  it('takes back a probe slot held past its lease', () => {
    const r = rules({ failures: 1, openMs: 1 });
    let record = call(undefined, 'failure', 0, r).record;
    record = admit(record, 'stuck', 1, r).record;
    expect(admit(record, 'next', 2, r).ticket).toBeUndefined();
    expect(admit(record, 'next', 1 + probeLeaseMs, r).ticket).toEqual({ kind: 'probe', id: 'next' });
  });

  it('grows the open time by the backoff factor on repeated trips, up to maxMs, and starts over after a close', () => {
    const r = rules({ failures: 1, openMs: 1_000, backoff: { factor: 2, maxMs: 3_000 } });
    let now = 0;
    let record = call(undefined, 'failure', now, r).record;
    const openings = [record.openMs];
    for (let i = 0; i < 3; i++) {
      now += record.openMs ?? 0;
      record = call(record, 'failure', now, r).record;
      openings.push(record.openMs);
    }
    expect(openings).toEqual([1_000, 2_000, 3_000, 3_000]);
    now += record.openMs ?? 0;
    record = call(record, 'success', now, r).record;
    expect(record).toMatchObject({ state: 'closed', trips: 0 });
    expect(call(record, 'failure', now, r).record.openMs).toBe(1_000);
  });
});

describe('circuit: manual control', () => {
  it('isolates until reset, whatever the time', () => {
    const r = rules();
    const step = isolate(undefined, 5);
    expect(step.transitions).toEqual([{ to: 'open', reason: 'isolated', failures: 0, openMs: Infinity }]);
    expect(isolate(step.record, 6).transitions).toEqual([]);
    expect(admit(step.record, 'a', Number.MAX_SAFE_INTEGER, r).ticket).toBeUndefined();
    expect(snapshot('k', step.record, 10, r)).toMatchObject({ state: 'isolated', retryAfterMs: null, openedAt: 5 });
    const cleared = reset(step.record, 10);
    expect(cleared.transitions).toEqual([{ to: 'closed', reason: 'reset' }]);
    expect(admit(cleared.record, 'a', 10, r).ticket).toEqual({ kind: 'call', at: 10 });
    // A result of a call admitted before the reset is dropped.
    expect(settle(cleared.record, { kind: 'call', at: 9 }, 'failure', 11, r).record).toEqual(cleared.record);
  });

  it('reports no close when resetting a closed circuit', () => {
    expect(reset(undefined, 0).transitions).toEqual([]);
  });

  it('never mutates the record it is given', () => {
    const r = rules({ failures: 2, failureRate: { threshold: 0.5, windowMs: 1_000, minimumCalls: 1, buckets: 4 } });
    const record = call(undefined, 'success', 0, r).record;
    const frozen = JSON.stringify(record);
    const admitted = admit(record, 'x', 1, r);
    settle(record, admitted.ticket as Ticket, 'failure', 1, r);
    isolate(record, 1);
    reset(record, 1);
    expect(JSON.stringify(record)).toBe(frozen);
  });
});

describe('circuit: record lifetimes', () => {
  const ticket: Ticket = { kind: 'call', at: 0 };

  it('keeps a closed circuit for its window, or a run of failures for an hour', () => {
    const r = rules({ failures: 3, failureRate: { threshold: 0.5, windowMs: 60_000, minimumCalls: 20, buckets: 10 } });
    const quiet = settle(undefined, ticket, 'success', 0, r).record;
    expect(lifetimeMs(quiet, 0, r)).toBe(60_000);
    expect(lifetimeMs(quiet, 0, rules())).toBe(30_000); // no window: the open time
    const failing = settle(undefined, ticket, 'failure', 0, r).record;
    expect(lifetimeMs(failing, 0, r)).toBe(runMemoryMs);
  });

  it('keeps an open circuit until half-open plus a margin for its probe and backoff, and an isolated one for a week', () => {
    const r = rules({ failures: 1, openMs: 10_000, backoff: { factor: 2, maxMs: 600_000 } });
    const open = settle(undefined, ticket, 'failure', 0, r).record;
    expect(lifetimeMs(open, 4_000, r)).toBe(6_000 + 600_000);
    expect(lifetimeMs(open, 4_000, rules({ failures: 1, openMs: 10_000 }))).toBe(6_000 + probeLeaseMs);
    const probing = admit(open, 'p', 10_000, r).record;
    expect(lifetimeMs(probing, 10_000, r)).toBe(600_000);
    expect(lifetimeMs(isolate(undefined, 0).record, 0, r)).toBe(isolationMs);
  });
});
