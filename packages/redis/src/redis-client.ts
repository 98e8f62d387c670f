/**
 * The few commands the store sends, over either client users bring:
 * node-redis (v5: `createClient()`, camelCase `evalSha`, `sendCommand`)
 * or ioredis (v5: `new Redis()`, lowercase `evalsha`, `call`). Neither is
 * imported: the store only needs their shape, so neither is bundled and
 * users keep their own connection, TLS, auth and reconnection settings.
 */

/** A node-redis v5 client (`createClient()`), as far as the store uses it. */
export interface NodeRedisLike {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  sendCommand(args: string[]): Promise<unknown>;
  readonly isReady?: boolean;
}

/**
 * A node-redis v5 cluster (`createCluster()`), as far as the store uses it:
 * its `sendCommand` takes the key that picks the node first.
 */
export interface NodeRedisClusterLike {
  evalSha(sha: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[]): Promise<unknown>;
  /** What tells a cluster from a single client. */
  readonly masters: unknown;
  readonly isOpen?: boolean;
}

/** An ioredis v5 client (or cluster), as far as the store uses it. */
export interface IORedisLike {
  evalsha(sha: string, numKeys: number, ...args: string[]): Promise<unknown>;
  eval(script: string, numKeys: number, ...args: string[]): Promise<unknown>;
  call(command: string, ...args: string[]): Promise<unknown>;
  readonly status?: string;
  /** True on an ioredis cluster (`new Cluster()`). */
  readonly isCluster?: boolean;
}

/** What `redisStore({ client })` accepts: a node-redis client or cluster, or an ioredis client or cluster. */
export type RedisClientLike = NodeRedisLike | NodeRedisClusterLike | IORedisLike;

/** The commands the store sends, the same for both clients. */
export interface RedisCommands {
  /** Runs a script by its SHA-1, loading it with EVAL when the server does not know it (after a restart or a SCRIPT FLUSH). */
  script(source: string, sha: string, keys: string[], args: string[]): Promise<unknown>;
  /**
   * Sends one command. `key` is the key it reads, which picks the node on a
   * cluster (`undefined`: any node), and `readonly` whether a replica may answer.
   */
  command(args: string[], key?: string, readonly?: boolean): Promise<unknown>;
  /** False when the client says it is not connected: the store then fails at once instead of queueing. */
  ready(): boolean;
  /** Whether the client talks to a Redis Cluster, where the keys of one script must share a slot. */
  readonly cluster: boolean;
}

function isIORedis(client: RedisClientLike): client is IORedisLike {
  return typeof (client as IORedisLike).evalsha === 'function' && typeof (client as IORedisLike).call === 'function';
}

function isNodeRedis(client: RedisClientLike): client is NodeRedisLike | NodeRedisClusterLike {
  return typeof (client as NodeRedisLike).evalSha === 'function' && typeof (client as NodeRedisLike).sendCommand === 'function';
}

function isNodeRedisCluster(client: NodeRedisLike | NodeRedisClusterLike): client is NodeRedisClusterLike {
  return 'masters' in client;
}

/** Whether `error` is the server's "no script with this SHA" answer. */
function isNoScript(error: unknown): boolean {
  return error instanceof Error && error.message.includes('NOSCRIPT');
}

/**
 * Adapts a user's client to {@link RedisCommands}.
 *
 * @param client - a node-redis or ioredis client
 * @returns undefined when `client` is neither
 */
export function redisCommands(client: RedisClientLike): RedisCommands | undefined {
  if (isIORedis(client)) {
    return {
      async script(source, sha, keys, args) {
        try {
          return await client.evalsha(sha, keys.length, ...keys, ...args);
        } catch (error) {
          if (!isNoScript(error)) throw error;
          return client.eval(source, keys.length, ...keys, ...args);
        }
      },
      command: ([name, ...args]) => client.call(name as string, ...args),
      // Down once it lost its connection; while it first connects, ioredis queues commands (bounded by our timeout).
      ready: () => !['reconnecting', 'close', 'end'].includes(client.status ?? ''),
      cluster: client.isCluster === true,
    };
  }
  if (isNodeRedis(client)) {
    const script: RedisCommands['script'] = async (source, sha, keys, args) => {
      try {
        return await client.evalSha(sha, { keys, arguments: args });
      } catch (error) {
        if (!isNoScript(error)) throw error;
        return client.eval(source, { keys, arguments: args });
      }
    };
    if (isNodeRedisCluster(client)) {
      return {
        script,
        // node-redis v5's cluster: sendCommand(firstKey, isReadonly, args), the key routing it to its slot's node.
        command: (args, key, readonly = false) => client.sendCommand(key, readonly, args),
        ready: () => client.isOpen !== false,
        cluster: true,
      };
    }
    return {
      script,
      command: (args) => client.sendCommand(args),
      ready: () => client.isReady !== false,
      cluster: false,
    };
  }
  return undefined;
}
