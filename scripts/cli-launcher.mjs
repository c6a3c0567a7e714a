// The CLI bundle's entry (scripts/bundle-cli.mjs copies it to dist/cli-bundle/launch.mjs): loads
// the CommonJS bundle with a V8 code cache, because Node 20 has none for modules of its own (its
// module compile cache came in Node 22).
//
// Each chunk of the bundle is compiled with the cached data in `.cache/<chunk>.cache` beside it.
// A chunk that had no usable cache (first run after a build, another Node or other V8 flags: V8
// checks the source and the flags, and rejects a cache that does not match) gets one written when
// the process exits, with every function this run compiled; writes go to a temporary name and are
// renamed, and any failure to write (a read-only checkout) only means no cache. Nothing else
// changes: the chunk runs with the same module wrapper and `require` that Node gives it.
import fs from 'node:fs';
import Module, { createRequire } from 'node:module';
import path from 'node:path';
import process from 'node:process';
import { fileURLToPath } from 'node:url';
import vm from 'node:vm';

const bundleDir = path.dirname(fileURLToPath(import.meta.url));
const cacheDir = path.join(bundleDir, '.cache');
/** Scripts compiled without a usable cache, with their cache file: written on exit. */
const toWrite = [];

const compile = Module.prototype._compile;
Module.prototype._compile = function compileWithCache(content, filename) {
  if (path.dirname(filename) !== bundleDir) return compile.call(this, content, filename);
  const cacheFile = path.join(cacheDir, `${path.basename(filename)}.cache`);
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(content), { filename, cachedData });
  if (cachedData === undefined || script.cachedDataRejected === true) toWrite.push({ script, cacheFile });
  const wrapper = script.runInThisContext({ displayErrors: true });
  const localRequire = (id) => this.require(id);
  localRequire.resolve = (request, options) => Module._resolveFilename(request, this, false, options);
  localRequire.main = undefined;
  localRequire.cache = Module._cache;
  return wrapper.call(this.exports, this.exports, localRequire, this, filename, bundleDir);
};

process.on('exit', () => {
  if (toWrite.length === 0) return;
  try {
    fs.mkdirSync(cacheDir, { recursive: true });
    for (const { script, cacheFile } of toWrite) {
      const temp = `${cacheFile}.${process.pid}.tmp`;
      fs.writeFileSync(temp, script.createCachedData());
      fs.renameSync(temp, cacheFile);
    }
  } catch {
    // No cache this time; the next run compiles as usual and tries again.
  }
});

createRequire(import.meta.url)('./skiff.cjs');
