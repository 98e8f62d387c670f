import { readdirSync } from 'node:fs';
import { defineConfig } from 'vitest/config';

// Workspace packages resolve to their `src` through the `@sluice/source` export
// condition, so tests never need a build first.
const conditions = ['@sluice/source', 'module', 'node', 'import', 'default'];
const packages = readdirSync(new URL('./packages', import.meta.url));

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    // Real HTTP, child processes and seeded property runs on a 2-core machine
    // that may be busy: no test asserts a duration, so timeouts only catch hangs.
    testTimeout: 60_000,
    hookTimeout: 30_000,
    projects: [
      ...packages.map((name) => ({
        extends: true as const,
        test: { name, root: `packages/${name}`, include: ['src/**/*.test.ts'] },
      })),
      // Tests across packages (the whole resilience pipeline under faults).
      { extends: true as const, test: { name: 'examples', root: 'examples', include: ['**/*.test.ts'] } },
    ],
  },
});
