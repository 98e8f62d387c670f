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

/** A Redis Cluster of the test's own: `nodes` masters, no replicas, the slots split evenly between them. */
export interface TestRedisCluster {
  /** Each master's port. */
  readonly ports: readonly number[];
  /** How many keys each master holds, in the order of `ports`. */
  keysPerNode(): Promise<number[]>;
  stop(): Promise<void>;
}

/** Sends one command on a fresh connection and reads its whole reply as text (enough for the few set-up commands). */
function command(port: number, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = '';
    socket.once('error', reject);
    socket.connect(port, '127.0.0.1', () => socket.write(`*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`));
    socket.on('data', (data) => {
      reply += data.toString();
      // One reply: a simple string, an error or a bulk string whose length has arrived in full.
      const bulk = /^\$(\d+)\r\n/.exec(reply);
      if ((reply[0] !== '$' && reply.endsWith('\r\n')) || (bulk && reply.length >= bulk[0].length + Number(bulk[1]) + 2)) {
        socket.destroy();
        resolve(reply);
      }
    });
  });
}

/**
 * Starts a Redis Cluster: `nodes` redis-servers in cluster mode on free
 * ports (their bus on other free ports, their node files in a temporary
 * folder), each given an even share of the 16,384 slots, introduced to
 * the first, and ready once every node says the cluster is ok.
 */
export async function startRedisCluster(nodes = 3): Promise<TestRedisCluster> {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  const dir = mkdtempSync(join(tmpdir(), 'sluice-redis-cluster-'));
  const ports: number[] = [];
  const buses: number[] = [];
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(
      children.map((child) => {
        if (child.exitCode !== null) return undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let i = 0; i < nodes; i++) {
      const port = await freePort();
      const bus = await freePort();
      ports.push(port);
      buses.push(bus);
      children.push(
        spawn(
          'redis-server',
          ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--cluster-enabled', 'yes',
            '--cluster-port', String(bus), '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--dir', dir],
          { stdio: 'ignore' },
        ),
      );
    }
    for (const port of ports) {
      let up = false;
      for (let i = 0; i < 200 && !up; i++) {
        up = await answersPing(port);
        if (!up) await new Promise((resolve) => setTimeout(resolve, 25));
      }
      if (!up) throw new Error(`redis-server (cluster) did not start on port ${port}`);
    }
    const share = Math.ceil(16_384 / nodes);
    for (const [index, port] of ports.entries()) {
      const from = index * share;
      const to = Math.min(16_383, from + share - 1);
      const reply = await command(port, ['CLUSTER', 'ADDSLOTSRANGE', String(from), String(to)]);
      if (!reply.startsWith('+OK')) throw new Error(`CLUSTER ADDSLOTSRANGE on ${port}: ${reply.trim()}`);
    }
    // The bus port too: it is not the default (the port + 10,000), which may be taken or out of range.
    for (const [index, port] of ports.entries()) {
      if (index > 0) await command(ports[0] as number, ['CLUSTER', 'MEET', '127.0.0.1', String(port), String(buses[index])]);
    }
    for (let i = 0; i < 400; i++) {
      const states = await Promise.all(ports.map((port) => command(port, ['CLUSTER', 'INFO'])));
      if (states.every((info) => info.includes('cluster_state:ok') && info.includes(`cluster_known_nodes:${nodes}`))) {
        const keysPerNode = async () => Promise.all(ports.map(async (port) => Number((await command(port, ['DBSIZE'])).slice(1))));
        return { ports, keysPerNode, stop };
      }
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error('the Redis Cluster did not become ready');
  } catch (error) {
    await stop();
    throw error;
  }
}
