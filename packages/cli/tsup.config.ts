import { defineConfig } from 'tsup';

export default defineConfig({
  // bin.ts keeps its shebang and is marked executable; only the library entry gets types.
  entry: ['src/index.ts', 'src/bin.ts'],
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
  sourcemap: true,
  target: 'node20',
});
