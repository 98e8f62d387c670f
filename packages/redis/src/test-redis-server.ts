// A real redis-server for the tests: started on a free port with
// persistence off, stopped (and restarted, for outages) by the test.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createServer, Socket } from 'node:net';

/** Whether a redis-server binary is on the PATH. */
export const hasRedisServer = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const required = process.env.SLUICE_REQUIRE_REDIS === '1';
let told = false;

/**
 * Whether the Redis suites should be skipped: only when no server is
 * installed and CI does not require one (there a missing server fails).
 * Prints one line saying how to get it, once.
 */
export function skipRedis(): boolean {
  if (hasRedisServer) return false;
  if (required) throw new Error('SLUICE_REQUIRE_REDIS=1 but redis-server is not installed');
  if (!told) {
    told = true;
    console.log('@sluice/redis: skipping the Redis suites, redis-server is not installed (apt-get install -y redis-server)');
  }
  return true;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    socket.once('error', () => resolve(false));
    socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
    socket.once('data', (data) => {
      socket.destroy();
      resolve(data.toString().startsWith('+PONG'));
    });
  });
}

/** A redis-server of the test's own. */
export interface TestRedis {
  readonly port: number;
  readonly url: string;
  /** Starts it (again) on the same port. */
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts a redis-server on a free port, no persistence. */
export async function startRedis(): Promise<TestRedis> {
  const port = await freePort();
  let child: ChildProcess | undefined;
  const redis: TestRedis = {
    port,
    url: `redis://127.0.0.1:${port}`,
    async start() {
      child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
        stdio: 'ignore',
      });
      for (let i = 0; i < 200; i++) {
        if (await answersPing(port)) return;
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      throw new Error(`redis-server did not start on port ${port}`);
    },
    async stop() {
      const running = child;
      child = undefined;
      if (!running || running.exitCode !== null) return;
      const exited = new Promise((resolve) => running.once('exit', resolve));
      running.kill('SIGKILL');
      await exited;
    },
  };
  await redis.start();
  return redis;
}
