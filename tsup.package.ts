import { defineConfig, type Options } from 'tsup';

/**
 * The build every package shares: ESM and CJS with `.d.ts` / `.d.cts`,
 * source maps, for Node 20. A package's `tsup.config.ts` names its entries.
 *
 * @param entry - the package's entry files (`src/index.ts`, a subpath's file)
 * @param extra - tsup options that differ for this package (the cli's bin)
 */
export function packageBuild(entry: string[], extra: Options = {}) {
  // `pnpm build:js` (what `pnpm bench` runs first) rebuilds the JavaScript only: a benchmark times the code users
  // install, and the declarations, most of a full build's time, do not change what runs.
  const jsOnly = process.env.SLUICE_BUILD_JS_ONLY === '1';
  const options: Options = { entry, format: ['esm', 'cjs'], dts: true, clean: true, sourcemap: true, target: 'node20', ...extra };
  return defineConfig(jsOnly ? { ...options, dts: false, clean: false } : options);
}
