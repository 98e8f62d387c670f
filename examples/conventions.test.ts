import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// The house rules that a reviewer would otherwise check by hand, over every
// package's source (tests and test helpers excluded).

const packagesDir = fileURLToPath(new URL('../packages', import.meta.url));
const packages = readdirSync(packagesDir);

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return /\.ts$/.test(entry.name) && !/\.test\.ts$|^test-/.test(entry.name) ? [path] : [];
  });
}

/** Relative imports and re-exports of a file, type-only ones included: a type cycle is still a cycle of layers. */
function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const match of text.matchAll(/(?:import|export)\s[^;]*?from\s+'(\.[^']+)'/g)) {
    out.push(resolve(dirname(file), (match[1] as string).replace(/\.js$/, '.ts')));
  }
  return out;
}

/** One cycle in the graph, as a list of files, or undefined. */
function findCycle(graph: Map<string, string[]>): string[] | undefined {
  const state = new Map<string, 'visiting' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string): string[] | undefined => {
    if (state.get(node) === 'done') return undefined;
    if (state.get(node) === 'visiting') return stack.slice(stack.indexOf(node)).concat(node);
    state.set(node, 'visiting');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, 'done');
    return undefined;
  };
  for (const node of graph.keys()) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

describe('house rules', () => {
  it.each(packages)('%s has no import cycle, type-only imports included', (name) => {
    const files = sourceFiles(join(packagesDir, name, 'src'));
    const graph = new Map(files.map((file) => [file, localImports(file).filter((target) => files.includes(target))]));
    const cycle = findCycle(graph)?.map((file) => file.slice(packagesDir.length + 1));
    expect(cycle).toBeUndefined();
  });

  it.each(packages)('%s keeps no private test harness (they come from @sluice/testing)', (name) => {
    const harnesses = readdirSync(join(packagesDir, name, 'src')).filter((file) => /^test-(harness|pipeline|clock)\.ts$/.test(file));
    expect(harnesses).toEqual([]);
  });
});
