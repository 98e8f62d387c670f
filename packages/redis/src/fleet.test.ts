// Four real Node processes, one Redis: the fleet shares one request limit,
// one per-tenant token limit, one breaker and one budget. Real time runs
// here (fake time cannot cross processes), so the windows are short and
// every assertion is a count or an invariant, never a duration.
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { skipRedis, startRedis, type TestRedis } from './test-redis-server.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./test-fleet-child.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../..', import.meta.url));
const processes = 4;

type Result = { ok: true; tenant: string; prompt: number; completion: number } | { ok: false; code: string; typed: boolean };
interface Report {
  results: Result[];
  storeErrors: Record<string, number>;
  unhandled: number;
}

async function fleet(redis: TestRedis, upstream: MockUpstream, scenario: string): Promise<Report[]> {
  return Promise.all(
    Array.from({ length: processes }, async (_, index) => {
      const args = ['--conditions=@sluice/source', '--import', 'tsx', child, redis.url, upstream.url, scenario, String(index)];
      const { stdout } = await run(process.execPath, args, { cwd: repoRoot, timeout: 80_000 });
      return JSON.parse(stdout.trim().split('\n').at(-1) as string) as Report;
    }),
  );
}

/** Most arrivals in any window of `windowMs`, weighted. */
function busiestWindow(arrivals: Array<{ at: number; weight: number }>, windowMs: number): number {
  const sorted = [...arrivals].sort((a, b) => a.at - b.at);
  let most = 0;
  for (let i = 0; i < sorted.length; i++) {
    let sum = 0;
    for (let j = i; j < sorted.length && (sorted[j] as { at: number }).at < (sorted[i] as { at: number }).at + windowMs; j++) sum += (sorted[j] as { weight: number }).weight;
    most = Math.max(most, sum);
  }
  return most;
}

// gpt-4.1's built-in price, per token.
const usd = (result: { prompt: number; completion: number }) => (result.prompt * 2 + result.completion * 8) / 1e6;
/**
 * When a limit of the fleet booked a request, as the request told the
 * upstream, on the fleet's one Redis clock (see noteBookings() in the child).
 */
const admittedAt = (request: { body: unknown }, field: 'requests_at' | 'tokens_at') =>
  Number((request.body as { metadata?: Record<string, string> }).metadata?.[field]);

describe.skipIf(skipRedis())('a fleet of 4 processes on one Redis', () => {
  let redis: TestRedis;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis.stop();
  });

  it('holds one request window, one token window per tenant and one budget across every process', async () => {
    const upstream = await mockUpstream();
    try {
      const reports = await fleet(redis, upstream, 'limits');
      const results = reports.flatMap((report) => report.results);
      expect(results).toHaveLength(processes * 32);
      expect(results.filter((result) => !result.ok && !result.typed)).toEqual([]);
      expect(reports.map((report) => report.unhandled)).toEqual([0, 0, 0, 0]);
      const done = results.filter((result): result is Extract<Result, { ok: true }> => result.ok);
      expect(done.length).toBeGreaterThan(0);
      expect(upstream.requests.length).toBe(done.length);

      // No window of the shared request limit over 16, wherever the requests came from.
      expect(upstream.requests.every((request) => Number.isFinite(admittedAt(request, 'requests_at')))).toBe(true);
      expect(
        busiestWindow(upstream.requests.map((request) => ({ at: admittedAt(request, 'requests_at'), weight: 1 })), 1_000),
      ).toBeLessThanOrEqual(16);
      // Each tenant's tokens (the same usage for every call) within 90 a window.
      const tokens = Math.max(...done.map((result) => result.prompt + result.completion));
      for (const tenant of ['a', 'b']) {
        const arrivals = upstream.requests
          .filter((request) => (request.body as { user?: string }).user === tenant)
          .map((request) => ({ at: admittedAt(request, 'tokens_at'), weight: tokens }));
        expect(busiestWindow(arrivals, 1_000)).toBeLessThanOrEqual(90);
      }
      // The fleet's spend never passes the one budget, and the budget did bind.
      expect(done.reduce((sum, result) => sum + usd(result), 0)).toBeLessThanOrEqual(0.0015);
      expect(results.some((result) => !result.ok && result.code === 'BUDGET_EXCEEDED')).toBe(true);
    } finally {
      await upstream.close();
    }
  }, 100_000);

  it('stops the whole fleet calling a dead upstream after one shared count of failures', async () => {
    const upstream = await mockUpstream({ faults: [{ probability: 1, fault: { kind: 'status', status: 503 } }] });
    try {
      const reports = await fleet(redis, upstream, 'outage');
      const results = reports.flatMap((report) => report.results);
      expect(results.every((result) => !result.ok && result.typed)).toBe(true);
      expect(results.some((result) => !result.ok && result.code === 'CIRCUIT_OPEN')).toBe(true);
      const ats = upstream.requests.map((request) => request.at);
      const openPeriods = Math.floor((Math.max(...ats) - Math.min(...ats)) / 300) + 1;
      // 5 failures trip it; the other 3 processes may each have one call in flight as it trips;
      // then one probe per open period, for the whole fleet (per process it would be 4 × (5 + periods)).
      expect(upstream.requests.length).toBeGreaterThanOrEqual(5);
      expect(upstream.requests.length).toBeLessThanOrEqual(5 + (processes - 1) + openPeriods);
    } finally {
      await upstream.close();
    }
  }, 100_000);

  it('keeps every call answered when Redis stops mid-run and comes back', async () => {
    const upstream = await mockUpstream();
    try {
      const running = fleet(redis, upstream, 'restart');
      // Stop Redis once the fleet is calling (or once it is done, on a machine too slow to catch it mid-run).
      await Promise.race([upstream.waitForRequests(3), running]);
      await redis.stop();
      await new Promise((resolve) => setTimeout(resolve, 300));
      await redis.start();
      const reports = await running;
      const results = reports.flatMap((report) => report.results);
      expect(results).toHaveLength(processes * 32);
      // Every call settled as a completion or a typed error; nothing escaped.
      expect(results.filter((result) => !result.ok && !result.typed)).toEqual([]);
      expect(reports.map((report) => report.unhandled)).toEqual([0, 0, 0, 0]);
      // Each middleware's stated policy shows in its store-error events.
      const policies = new Set(reports.flatMap((report) => Object.keys(report.storeErrors)));
      expect([...policies].every((policy) => ['ratelimit:open', 'ratelimit:closed', 'breaker:memory', 'cost:closed'].includes(policy))).toBe(true);
      expect(policies.size).toBeGreaterThan(0);
    } finally {
      await upstream.close();
    }
  }, 100_000);
});
