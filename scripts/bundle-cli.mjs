// Bundles the compiled CLI (dist/cli/skiff.js and what it imports, node_modules included) into
// dist/cli-bundle/, one chunk per lazily loaded command group. Run by `npm run build` after tsc.
//
// Why: `skiff service create` spent about 40 ms of its CPU time resolving, reading and compiling
// some 250 separate modules (grpc-js alone is 70 files) before its first byte went out; one file per
// command group is read and compiled in one go (bench/service-start.ts, docs/benchmarks.md).
// bin/skiff runs the bundle when it is newer than dist/cli/skiff.js, so a tsc-only rebuild is
// never shadowed by a stale bundle.
import { rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'cli-bundle');

await rm(outDir, { recursive: true, force: true });
await build({
  input: join(root, 'dist', 'cli', 'skiff.js'),
  platform: 'node',
  logLevel: 'warn',
  // A module both imported lazily (for the daemon's memory) and eagerly elsewhere stays in one chunk: fine.
  onLog: (level, log, handler) => {
    if (log.code !== 'INEFFECTIVE_DYNAMIC_IMPORT') handler(level, log);
  },
  output: { dir: outDir, format: 'esm', entryFileNames: '[name].js', chunkFileNames: '[name]-[hash].js' },
});
