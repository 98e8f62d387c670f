import { defineConfig, type Options } from 'tsup';

/**
 * The build every package shares: ESM and CJS with `.d.ts` / `.d.cts`,
 * source maps, for Node 20. A package's `tsup.config.ts` names its entries.
 *
 * @param entry - the package's entry files (`src/index.ts`, a subpath's file)
 * @param extra - tsup options that differ for this package (the cli's bin)
 */
export function packageBuild(entry: string[], extra: Options = {}) {
  return defineConfig({ entry, format: ['esm', 'cjs'], dts: true, clean: true, sourcemap: true, target: 'node20', ...extra });
}
