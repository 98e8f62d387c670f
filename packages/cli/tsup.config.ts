import { packageBuild } from '../../tsup.package.js';

// bin.ts keeps its shebang and is marked executable; only the library entry gets types.
export default packageBuild(['src/index.ts', 'src/bin.ts'], { dts: { entry: { index: 'src/index.ts' } } });
