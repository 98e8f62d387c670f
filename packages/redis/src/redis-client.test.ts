// The adapter over the clients users bring, checked against fakes that
// record their calls: no Redis Cluster is available to the tests, and the
// shape of each client's methods is what this file is about.
import { describe, expect, it } from 'vitest';
import { redisCommands } from './redis-client.js';
import { redisStore } from './redis-store.js';

type Call = [method: string, ...args: unknown[]];

/** A node-redis v5 cluster look-alike: `sendCommand(firstKey, isReadonly, args)`, scripts routed by their first key. */
function fakeNodeRedisCluster(options: { noScript?: boolean } = {}) {
  const calls: Call[] = [];
  let scriptLoaded = !options.noScript;
  const answer = (args: string[]) => {
    if (args[0] === 'TIME') return ['1700000000', '250000'];
    if (args[0] === 'GET') return null;
    return 'OK';
  };
  const written = (keys: string[]) => ['0', '0', ...keys.flatMap(() => [1, ''])];
  return {
    calls,
    masters: [],
    isOpen: true,
    async sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]) {
      calls.push(['sendCommand', firstKey, isReadonly, args]);
      if (!Array.isArray(args)) throw new TypeError('args must be an array');
      return answer(args);
    },
    async evalSha(sha: string, { keys, arguments: args }: { keys: string[]; arguments: string[] }) {
      calls.push(['evalSha', sha, keys, args]);
      if (!scriptLoaded) throw new Error('NOSCRIPT No matching script.');
      return written(keys);
    },
    async eval(_script: string, { keys, arguments: args }: { keys: string[]; arguments: string[] }) {
      calls.push(['eval', keys, args]);
      scriptLoaded = true;
      return written(keys);
    },
  };
}

/** A node-redis v5 single client look-alike: `sendCommand(args)`. */
function fakeNodeRedisClient() {
  const calls: Call[] = [];
  return {
    calls,
    isReady: true,
    async sendCommand(args: string[]) {
      calls.push(['sendCommand', args]);
      return args[0] === 'TIME' ? ['1700000000', '0'] : null;
    },
    async evalSha() {
      return ['0', '0'];
    },
    async eval() {
      return ['0', '0'];
    },
  };
}

describe('the node-redis cluster adapter', () => {
  it('sends a command as sendCommand(firstKey, isReadonly, args), the key picking the node', async () => {
    const cluster = fakeNodeRedisCluster();
    const commands = redisCommands(cluster)!;
    expect(commands.cluster).toBe(true);
    await commands.command(['GET', 'app:{sluice:breaker:global}'], 'app:{sluice:breaker:global}', true);
    await commands.command(['TIME']);
    expect(cluster.calls).toEqual([
      ['sendCommand', 'app:{sluice:breaker:global}', true, ['GET', 'app:{sluice:breaker:global}']],
      ['sendCommand', undefined, false, ['TIME']],
    ]);
  });

  it('runs the script by its SHA, and loads it with EVAL when the node does not know it', async () => {
    const cluster = fakeNodeRedisCluster({ noScript: true });
    const commands = redisCommands(cluster)!;
    await expect(commands.script('return 1', 'abc', ['k'], ['1', 'v'])).resolves.toEqual(['0', '0', 1, '']);
    expect(cluster.calls).toEqual([
      ['evalSha', 'abc', ['k'], ['1', 'v']],
      ['eval', ['k'], ['1', 'v']],
    ]);
  });

  it('works under redisStore: reads, the clock and writes each reach the node of their key, one key per script', async () => {
    const cluster = fakeNodeRedisCluster();
    const store = redisStore({ client: cluster, prefix: 'app:', timeoutMs: 5_000 });
    await store.syncClock();
    expect(await store.get('sluice:ratelimit:global')).toBeUndefined();
    await Promise.all([store.update('a', () => 1, 1_000), store.update('b', () => 2, 1_000)]);
    const sent = cluster.calls.filter(([method]) => method === 'sendCommand');
    expect(sent).toContainEqual(['sendCommand', undefined, false, ['TIME']]);
    expect(sent).toContainEqual(['sendCommand', 'app:{sluice:ratelimit:global}', true, ['GET', 'app:{sluice:ratelimit:global}']]);
    // Records are spread over slots: each write is a script of its own key.
    const scripts = cluster.calls.filter(([method]) => method === 'evalSha').map(([, , keys]) => keys);
    expect(scripts).toEqual([['app:{a}'], ['app:{b}']]);
    expect(store.clock.offsetMs).not.toBe(0);
  });
});

describe('the node-redis client adapter', () => {
  it('sends a command as sendCommand(args)', async () => {
    const client = fakeNodeRedisClient();
    const commands = redisCommands(client)!;
    expect(commands.cluster).toBe(false);
    await commands.command(['GET', 'k'], 'k', true);
    expect(client.calls).toEqual([['sendCommand', ['GET', 'k']]]);
  });
});
