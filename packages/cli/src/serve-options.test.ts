import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { buildRoutedPipeline } from './routed-pipeline.js';
import { parseServeConfig } from './serve-options.js';

describe('parseServeConfig', () => {
  const upstream = { baseUrl: 'http://127.0.0.1:1/v1' };

  it('fills the defaults: local only, 1 MiB bodies, no anonymous access', () => {
    expect(parseServeConfig({ upstream, keys: [{ key: 'sk-0123456789abcdef', tenant: 't' }] })).toMatchObject({
      host: '127.0.0.1',
      port: 8787,
      maxBodyBytes: 1 << 20,
      allowAnonymous: false,
    });
  });

  it('refuses a server no key opens unless anonymous access is asked for', () => {
    expect(() => parseServeConfig({ upstream })).toThrow(expect.objectContaining({ code: 'VALIDATION', field: 'config.keys' }));
    expect(parseServeConfig({ upstream, allowAnonymous: true }).keys).toEqual([]);
  });

  it('names a bad or unknown field', () => {
    expect(() => parseServeConfig({ upstream, keys: [{ key: 'short', tenant: 't' }] })).toThrow(expect.objectContaining({ field: 'config.keys.0.key' }));
    expect(() => parseServeConfig({ upstream, allowAnonymous: true, baseUrl: 'http://x/v1' })).toThrow(expect.objectContaining({ code: 'VALIDATION' }));
  });

  it('refuses a default deadline longer than its bound', () => {
    const keys = [{ key: 'sk-0123456789abcdef', tenant: 't' }];
    expect(() => parseServeConfig({ upstream, keys, timeoutMs: 60_000, maxTimeoutMs: 30_000 })).toThrow(expect.objectContaining({ field: 'config.timeoutMs' }));
    expect(parseServeConfig({ upstream, keys, timeoutMs: 30_000, maxTimeoutMs: 30_000 })).toMatchObject({ timeoutMs: 30_000, publicHealth: false, upstream: { connections: 128 } });
  });

  it('needs the upstream or deployments, and not both', () => {
    const keys = [{ key: 'sk-0123456789abcdef', tenant: 't' }];
    expect(() => parseServeConfig({ keys })).toThrow(expect.objectContaining({ field: 'config.upstream' }));
    const deployments = [{ id: 'a', baseUrl: 'http://127.0.0.1:1/v1', model: 'gpt-4.1' }];
    expect(parseServeConfig({ keys, deployments }).upstream).toBeUndefined();
    expect(() => parseServeConfig({ keys, deployments, upstream })).toThrow(expect.objectContaining({ field: 'config.deployments' }));
    expect(() => parseServeConfig({ keys, upstream, routing: { strategy: 'weighted' } })).toThrow(expect.objectContaining({ field: 'config.routing' }));
  });

  it("accepts the README's configs as written, and builds the routed one", async () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const heredoc = /cat > serve\.json <<'JSON'\n([\s\S]*?)\nJSON/.exec(readme)?.[1] ?? '';
    expect(parseServeConfig(JSON.parse(heredoc))).toMatchObject({ budget: { limitUsd: 5 } });
    const routedText = /\*\*Several upstreams\*\*[\s\S]*?```json\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    const routed = parseServeConfig(JSON.parse(routedText));
    expect(routed.deployments).toHaveLength(3);
    const env = { OPENAI_API_KEY: 'sk-a', AZURE_KEY: 'sk-b', DEEPSEEK_API_KEY: 'sk-c' };
    const built = buildRoutedPipeline({ ...routed, deployments: routed.deployments ?? [] }, env, { limitKey: { tag: 'tenant' }, costTracking: 'when-used', keepRawJson: true, connections: 8 });
    expect(built.models).toEqual(['gpt-4.1', 'deepseek-chat']);
    expect(built.circuits.map((known) => known.deployment)).toEqual(['openai', 'azure', 'deepseek']);
    await built.pipeline.close();
  });
});

