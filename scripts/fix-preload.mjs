// The preload compiles to CommonJS (a sandboxed preload cannot be an ES module) inside a package whose
// type is "module": mark its folder as CommonJS.
import { mkdirSync, writeFileSync } from 'node:fs';

mkdirSync('dist/preload', { recursive: true });
writeFileSync('dist/preload/package.json', JSON.stringify({ type: 'commonjs' }) + '\n');
