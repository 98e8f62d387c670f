import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** Every module the root and the kit reach through imports that stay at run time (type-only ones are erased). */
function runtimeImports(entry: string): Map<string, string[]> {
  const seen = new Map<string, string[]>();
  const visit = (file: string) => {
    if (seen.has(file)) return;
    const code = readFileSync(new URL(file, import.meta.url), 'utf8');
    const specifiers = [...code.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+'([^']+)'/gms)].map((match) => match[1] as string);
    seen.set(file, specifiers);
    for (const specifier of specifiers) if (specifier.startsWith('./')) visit(specifier.replace(/\.js$/, '.ts'));
  };
  visit(entry);
  return seen;
}

describe('runtime imports', () => {
  it.each(['./index.ts', './kit.ts'])('%s imports no node: module and no undici, so every runtime and bundler takes it', (entry) => {
    const offending = [...runtimeImports(entry)].flatMap(([file, specifiers]) =>
      specifiers.filter((specifier) => specifier.startsWith('node:') || specifier === 'undici').map((specifier) => `${file}: ${specifier}`),
    );
    expect(offending).toEqual([]);
  });
});
