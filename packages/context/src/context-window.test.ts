import { describe, expect, it } from 'vitest';
import { contextWindow, registerContextWindows } from './context-window.js';

describe('contextWindow', () => {
  it('knows the original models, through provider prefixes and dated snapshots', () => {
    expect(contextWindow('gpt-4.1')).toBe(1_047_576);
    expect(contextWindow('openai/gpt-4.1-2025-04-14')).toBe(1_047_576);
    expect(contextWindow('claude-sonnet-4-5-20250929')).toBe(200_000);
    expect(contextWindow('models/gemini-2.5-flash')).toBe(1_048_576);
    expect(contextWindow('deepseek-v3.2')).toBe(128_000);
  });

  it('uses the input limit of gpt-5, not its total window', () => {
    expect(contextWindow('gpt-5-mini')).toBe(272_000);
  });

  it('is undefined for a model it does not know', () => {
    expect(contextWindow('my-unregistered-model')).toBeUndefined();
  });

  it('answers a registered window first, by exact name and through a snapshot', () => {
    registerContextWindows({ 'test-window-model': 32_768, 'gpt-4o-test-variant': 64_000 });
    expect(contextWindow('test-window-model')).toBe(32_768);
    expect(contextWindow('vendor/test-window-model-2026-01-01')).toBe(32_768);
    expect(contextWindow('gpt-4o-test-variant')).toBe(64_000); // beats the gpt-4o prefix
  });

  it('answers a window registered after the model was looked up (nothing stale is kept)', () => {
    expect(contextWindow('gpt-4o-late-variant')).toBe(128_000);
    expect(contextWindow('late-model-x')).toBeUndefined();
    registerContextWindows({ 'gpt-4o-late-variant': 16_000, 'late-model-x': 8_000 });
    expect(contextWindow('gpt-4o-late-variant')).toBe(16_000);
    expect(contextWindow('late-model-x')).toBe(8_000);
  });

  it('refuses a window that is not a positive integer, registering nothing', () => {
    expect(() => registerContextWindows({ 'good-model-x': 1_000, 'bad-model-x': Number.NaN })).toThrow(
      expect.objectContaining({ code: 'VALIDATION', field: 'contextWindows.bad-model-x' }),
    );
    expect(contextWindow('good-model-x')).toBeUndefined();
  });
});
