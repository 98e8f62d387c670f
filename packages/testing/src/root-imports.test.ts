// The package root must load without @sluice/core: core's own tests import
// it, and a runtime import back into core would make the two load each other.
import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';

/** Every module reachable from `file` through runtime (not `import type`) imports. */
function runtimeImports(file: string, seen = new Set<string>()): Set<string> {
  if (seen.has(file)) return seen;
  seen.add(file);
  if (!file.startsWith('./')) return seen;
  const source = readFileSync(new URL(file.replace(/\.js$/, '.ts'), import.meta.url), 'utf8');
  for (const [, names, from] of source.matchAll(/^(?:import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'/gm)) {
    if (names === undefined && from !== undefined) runtimeImports(from, seen);
  }
  return seen;
}

it('the package root loads no @sluice/core at run time; the kit does', () => {
  expect([...runtimeImports('./index.js')].filter((name) => name.startsWith('@sluice/'))).toEqual([]);
  expect([...runtimeImports('./kit.js')]).toContain('@sluice/core');
});
