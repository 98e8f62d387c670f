import { execFile, execFileSync, spawn } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { mockUpstream } from '@sluice/testing';
import { heading } from './format.js';

const run = promisify(execFile);

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

/**
 * Three processes, one limit: three Node processes, each with its own
 * pipeline and `rateLimit({ requests: { limit: 10, windowMs: 1_000 } })`,
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
  try {
    while (!(await ping(port))) await new Promise((resolve) => setTimeout(resolve, 20));
    console.log('3 processes × 15 calls, each with rateLimit({ requests: { limit: 10, windowMs: 1_000 } }) on one redisStore');
    const member = fileURLToPath(new URL('./fleet-member.ts', import.meta.url));
    const reports = await Promise.all(
      ['alpha', 'beta', 'gamma'].map(async (name) => {
        const args = ['--conditions=@sluice/source', '--import', 'tsx', member, `redis://127.0.0.1:${port}`, upstream.url, name];
        const { stdout } = await run(process.execPath, args, { timeout: 120_000 });
        return JSON.parse(stdout.trim().split('\n').at(-1) as string) as { name: string; ok: number; waits: number; storeErrors: number };
      }),
    );
    for (const report of reports) console.log(
        `  ${report.name}: ${report.ok} answered, ${report.waits} waited for the shared window` +
          (report.storeErrors ? `, ${report.storeErrors} went ahead without it (Redis slower than 50 ms: store-error, policy open)` : ''),
      );
    const ats = upstream.requests.map((request) => request.at).sort((a, b) => a - b);
    let busiest = 0;
    for (let i = 0; i < ats.length; i++) busiest = Math.max(busiest, ats.filter((at) => at >= (ats[i] as number) && at < (ats[i] as number) + 1_000).length);
    console.log(`upstream: ${ats.length} requests; the busiest second held ${busiest} (each process alone would have let 10 through: 30)`);
  } finally {
    await upstream.close();
    server.kill('SIGKILL');
  }
}
