// Also bundles the daemon for worker nodes: see the end of this file.
//
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

const onLog = (level, log, handler) => {
  // A module both imported lazily (for the daemon's memory) and eagerly elsewhere stays in one chunk: fine.
  if (log.code !== 'INEFFECTIVE_DYNAMIC_IMPORT') handler(level, log);
};

/** Bundles tsc's output for `entry` (under dist/cli) into a fresh `dir`. */
async function bundle(entry, dir, output) {
  await rm(dir, { recursive: true, force: true });
  await build({ input: join(root, 'dist', 'cli', entry), platform: 'node', logLevel: 'warn', onLog, output: { dir, ...output } });
}

await bundle('skiff.js', outDir, { format: 'cjs', entryFileNames: '[name].cjs', chunkFileNames: '[name]-[hash].cjs' });
await copyFile(join(root, 'scripts', 'cli-launcher.mjs'), launcher);

// Warm the code caches: the help of every command group loads that group's chunks.
const groups = ['config', 'autolock', 'ca', 'context', 'image', 'init', 'join', 'lab', 'network', 'node', 'secret', 'service', 'stack', 'task', 'volume'];
for (const group of groups) {
  execFileSync(process.execPath, [launcher, group, '--help'], { stdio: 'ignore', env: { ...process.env, SKIFF_HOST: '' } });
}

// The daemon of worker nodes (bin/skiffd runs it for a node without the manager role, when newer
// than dist/cli/skiffd.js): an ES module bundle whose manager role stays in lazily loaded chunks,
// without comments and whitespace and with short local names (function and class names are kept,
// for stacks and `.name`). V8 keeps every loaded module's source text in the heap; this cut a
// worker's heap by about 0.7 MiB (issue 7's memory goal, docs/benchmarks.md). No code cache: it
// would compile every cached function eagerly, the opposite of what a small daemon wants.
await bundle('skiffd.js', join(root, 'dist', 'skiffd-bundle'), {
  format: 'esm',
  entryFileNames: '[name].mjs',
  chunkFileNames: '[name]-[hash].mjs',
  comments: false,
  // ASCII only: one character beyond Latin-1 makes V8 hold that whole chunk's source as UTF-16,
  // twice its size (0.47 MB more heap for the protocol chunk).
  charset: 'ascii',
  minify: { compress: false, mangle: { keepNames: true }, codegen: { removeWhitespace: true } },
});
