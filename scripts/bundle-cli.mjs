// Bundles the compiled CLI (dist/cli/skiff.js and what it imports, node_modules included) into
// dist/cli-bundle/, one chunk per lazily loaded command group, run through launch.mjs (from
// scripts/cli-launcher.mjs) with a V8 code cache. Run by `npm run build` after tsc.
//
// Why: `skiff service create` spent most of its CPU time before its first byte went out in Node's
// module loader (about 250 files; grpc-js alone is 70) and in compiling them. One CommonJS file per
// command group, compiled from a code cache, takes about 80 ms less CPU than tsc's output with
// source maps (bench/service-start.ts, docs/benchmarks.md "agent (issue 7)", second round).
// bin/skiff runs the bundle only when it is newer than dist/cli/skiff.js, so a tsc-only rebuild is
// never shadowed by a stale bundle. The build then runs the CLI's help once per command group, so
// that the caches of every chunk exist before the first real command.
import { execFileSync } from 'node:child_process';
import { copyFile, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import { build } from 'rolldown';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outDir = join(root, 'dist', 'cli-bundle');
const launcher = join(outDir, 'launch.mjs');

await rm(outDir, { recursive: true, force: true });
await build({
  input: join(root, 'dist', 'cli', 'skiff.js'),
  platform: 'node',
  logLevel: 'warn',
  // A module both imported lazily (for the daemon's memory) and eagerly elsewhere stays in one chunk: fine.
  onLog: (level, log, handler) => {
    if (log.code !== 'INEFFECTIVE_DYNAMIC_IMPORT') handler(level, log);
  },
  output: { dir: outDir, format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: '[name]-[hash].cjs' },
});
await copyFile(join(root, 'scripts', 'cli-launcher.mjs'), launcher);

// Warm the code caches: the help of every command group loads that group's chunks.
const groups = ['config', 'autolock', 'ca', 'image', 'init', 'join', 'lab', 'network', 'node', 'secret', 'service', 'task'];
for (const group of groups) {
  execFileSync(process.execPath, [launcher, group, '--help'], { stdio: 'ignore', env: { ...process.env, SKIFF_HOST: '' } });
}
