/**
 * Runs every package README's quick example as written (their
 * snippets here), against a mock upstream instead of the provider, so an
 * example with an undeclared name or a wrong call fails CI, not a reader.
 */
import { mockUpstream, type MockUpstream } from '@sluice/testing';
import { afterAll, beforeAll, expect, it, vi } from 'vitest';

let upstream: MockUpstream;
beforeAll(async () => {
  upstream = await mockUpstream({ reply: { content: 'Flood control, irrigation, milling.', usage: { prompt_tokens: 20, completion_tokens: 8 } } });
  vi.stubEnv('OPENAI_BASE_URL', upstream.url);
  vi.stubEnv('OPENAI_API_KEY', 'sk-test');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await upstream.close();
});

it.each([
  ['core', './core.js'],
  ['retry', './retry.js'],
  ['breaker', './breaker.js'],
  ['ratelimit', './ratelimit.js'],
  ['cost', './cost.js'],
  ['context', './context.js'],
  ['otel', './otel.js'],
  ['cache', './cache.js'],
])('the %s README example runs as written', async (_name, path) => {
  const before = upstream.requests.length;
  const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
  const write = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  // The otel example prints its spans with the SDK's console exporter.
  const dir = vi.spyOn(console, 'dir').mockImplementation(() => undefined);
  try {
    await import(path);
    expect(upstream.requests.length).toBeGreaterThan(before);
    expect(log).toHaveBeenCalledWith('Flood control, irrigation, milling.');
  } finally {
    log.mockRestore();
    write.mockRestore();
    dir.mockRestore();
  }
}, 60_000);
