const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1, us: 0.001, µs: 0.001, ns: 0.000_001 };
const part = /(\d+(?:\.\d+)?)(h|ms|m|s|us|µs|ns)/gy;

/**
 * Parses a provider's reset duration: Go-style (`6m0s`, `1s`, `20ms`,
 * `1h2m3.5s`, as OpenAI sends) or a plain number of seconds (`1.5`).
 *
 * @param text - the header value
 * @returns milliseconds, or `undefined` when it is not a duration
 * @example
 * ```ts
 * parseDuration('6m0s'); // 360000
 * ```
 */
export function parseDuration(text: string): number | undefined {
  const value = text.trim();
  if (value === '') return undefined;
  if (/^\d+(?:\.\d+)?$/.test(value)) return Number(value) * 1000;
  part.lastIndex = 0;
  let total = 0;
  let end = 0;
  let match: RegExpExecArray | null;
  while ((match = part.exec(value)) !== null) {
    total += Number(match[1]) * (units[match[2] as string] as number);
    end = part.lastIndex;
  }
  return end === value.length ? Math.ceil(total) : undefined;
}

/**
 * How long the provider's `x-ratelimit-*` headers say to hold off: until
 * `x-ratelimit-reset-requests` when `x-ratelimit-remaining-requests` is 0,
 * until `x-ratelimit-reset-tokens` when `x-ratelimit-remaining-tokens` is 0,
 * whichever is later.
 *
 * @param headers - response headers, names lowercased
 * @returns milliseconds to pause, or `undefined` when nothing is exhausted
 * @example
 * ```ts
 * headerPauseMs({ 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s' }); // 1000
 * ```
 */
export function headerPauseMs(headers: Readonly<Record<string, string>>): number | undefined {
  let pause: number | undefined;
  for (const kind of ['requests', 'tokens']) {
    const remaining = Number(headers[`x-ratelimit-remaining-${kind}`] ?? NaN);
    const reset = headers[`x-ratelimit-reset-${kind}`];
    if (!(remaining <= 0) || reset === undefined) continue;
    const ms = parseDuration(reset);
    if (ms !== undefined && ms > 0) pause = Math.max(pause ?? 0, ms);
  }
  return pause;
}
