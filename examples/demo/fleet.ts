import { execFileSync, spawn } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { mockUpstream } from '@sluice/testing';
import { heading } from './format.js';

interface Report {
  name: string;
  ok: number;
  waits: number;
  storeErrors: number;
  /** The first store error, for the record. */
  storeError?: string;
}

/** One member process: resolves `ready` once it is connected, `report` with its figures once it ran. */
function startMember(args: string[]): { ready: Promise<void>; go(): void; report: Promise<Report>; stop(): void } {
  const child = spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  let ready!: () => void;
  let done!: (report: Report) => void;
  let fail!: (error: Error) => void;
  const report = new Promise<Report>((resolve, reject) => {
    done = resolve;
    fail = reject;
  });
  // A process that dies before it is ready must not leave the others waiting for it.
  const readyPromise = Promise.race([new Promise<void>((resolve) => (ready = resolve)), report.then(() => undefined)]);
  lines.on('line', (line) => {
    if (line === 'ready') return ready();
    try {
      done(JSON.parse(line) as Report);
    } catch {
      // not a report
    }
  });
  child.on('exit', (code) => fail(new Error(`a fleet process exited (${code}) before reporting`)));
  return { ready: readyPromise, go: () => child.stdin.end('go\n'), report, stop: () => child.kill('SIGKILL') };
}

const installed = () => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const ping = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
  });

/** Most of `times` in any one second (every sliding window, not aligned ones); a time missing (NaN) counts in all. */
function busiestSecond(times: number[]): number {
  const ats = times.filter((at) => !Number.isNaN(at)).sort((a, b) => a - b);
  const missing = times.length - ats.length;
  let most = 0;
  for (const start of ats) most = Math.max(most, ats.filter((at) => at >= start && at < start + 1_000).length);
  return most + missing;
}

/**
 * Three processes, one limit: three Node processes, each with its own
 * pipeline and `rateLimit({ requests: { limit: 10, windowMs: 1_500 } })`,
 * share one Redis through `@sluice/redis`; the upstream sees at most 10 a
 * second in total, not 30.
 */
export async function fleet(): Promise<void> {
  heading('three processes, one limit (@sluice/redis)');
  if (!installed()) {
    console.log('skipped: redis-server is not installed (apt-get install -y redis-server, or brew install redis), then run pnpm demo again');
    return;
  }
  const port = await freePort();
  const server = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
  const upstream = await mockUpstream();
  const started: Array<{ stop(): void }> = [];
  try {
    while (!(await ping(port))) await new Promise((resolve) => setTimeout(resolve, 20));
    console.log('3 processes × 15 calls, each with rateLimit({ requests: { limit: 10, windowMs: 1_500 } }) on one redisStore');
    console.log('  (10 a second for the fleet, the window padded by 0.5 s for the transit from booking to arrival)');
    const member = fileURLToPath(new URL('./fleet-member.ts', import.meta.url));
    const members = ['alpha', 'beta', 'gamma'].map((name) =>
      startMember(['--conditions=@sluice/source', '--import', 'tsx', member, `redis://127.0.0.1:${port}`, upstream.url, name]),
    );
    started.push(...members);
    // Starting a process costs far more than a second here: they start their calls together, once all three are up.
    await Promise.all(members.map((one) => one.ready));
    for (const one of members) one.go();
    const reports = await Promise.all(members.map((one) => one.report));
    for (const report of reports) console.log(
        `  ${report.name}: ${report.ok} answered, ${report.waits} waited for the shared window` +
          (report.storeErrors ? `, ${report.storeErrors} went ahead without it (store-error, policy open: ${report.storeError})` : ''),
      );
    const admitted = busiestSecond(upstream.requests.map((request) => Number((request.body as { metadata?: Record<string, string> }).metadata?.admitted_at)));
    const arrived = busiestSecond(upstream.requests.map((request) => request.at));
    console.log(
      `upstream: ${upstream.requests.length} requests; the busiest second held ${admitted} bookings and ${arrived} arrivals ` +
        '(each process alone would have let 10 through: 30)',
    );
    const storeErrors = reports.reduce((sum, report) => sum + report.storeErrors, 0);
    const held = storeErrors === 0 && admitted <= 10 && arrived <= 10;
    console.log(
      held
        ? 'check: 0 store errors, and no second over the limit of 10, booked or arrived: the fleet held one limit'
        : `check FAILED: ${storeErrors} store error(s), busiest second ${admitted} booked and ${arrived} arrived against a limit of 10 (a loaded machine can starve the processes)`,
    );
    if (!held) process.exitCode = 1;
  } finally {
    for (const one of started) one.stop();
    await upstream.close();
    server.kill('SIGKILL');
  }
}
