/**
 * Unpacks one layer blob (tar, gzip-compressed or not) into a directory usable as an overlayfs
 * lower layer: OCI whiteouts become overlayfs whiteouts (`.wh.NAME` -> character device 0:0 named
 * NAME; `.wh..wh..opq` -> `trusted.overlay.opaque=y` on the directory). Modes (setuid included),
 * owners, mtimes, symlinks and hardlinks are preserved. Nothing is ever written outside `targetDir`:
 * `..` paths are refused, and so is any entry that would land under a symlink or a file.
 */
import { createHash } from 'node:crypto';
import { execFile } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, linkSync, lstatSync, mkdirSync, openSync, rmSync, symlinkSync } from 'node:fs';
import { chmod, chown, lchown, lutimes, open, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { once } from 'node:events';
import { promisify } from 'node:util';
import { createGunzip } from 'node:zlib';
import { Parser, type ReadEntry } from 'tar';
import { ImageError } from './types.js';

const run = promisify(execFile);

/** Refuse layers that inflate beyond this: a bound on a hostile or broken blob. */
export const MAX_LAYER_UNPACKED_BYTES = 32 * 1024 ** 3;
const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const SETFATTR = '/usr/bin/setfattr';

/** What an OCI whiteout entry means, or `undefined` for a normal entry. */
export function classifyWhiteout(path: string): { kind: 'opaque'; dir: string } | { kind: 'whiteout'; path: string } | { kind: 'ignored' } | undefined {
  const slash = path.lastIndexOf('/');
  const dir = slash === -1 ? '' : path.slice(0, slash);
  const base = path.slice(slash + 1);
  if (!base.startsWith(WHITEOUT_PREFIX)) return undefined;
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir };
  // Other `.wh..wh.` names are aufs bookkeeping (e.g. hardlink dirs), meaningless for overlayfs.
  if (base.startsWith(`${WHITEOUT_PREFIX}${WHITEOUT_PREFIX}`)) return { kind: 'ignored' };
  const name = base.slice(WHITEOUT_PREFIX.length);
  return { kind: 'whiteout', path: dir === '' ? name : `${dir}/${name}` };
}

interface Metadata {
  path: string;
  symlink: boolean;
  hardlink: boolean;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date | undefined;
}

/** Normalises an entry path to `a/b/c` ('' for the root); throws on `..`. */
function cleanPath(raw: string, fail: (reason: string) => never): string {
  const parts = raw.split('/').filter((part) => part !== '' && part !== '.');
  if (parts.includes('..')) fail(`entry "${raw}" escapes the layer with ".."`);
  return parts.join('/');
}

class LayerWriter {
  /** Kinds of everything created so far, by clean path; '' is the root. */
  private readonly kinds = new Map<string, 'dir' | 'other'>([['', 'dir']]);
  readonly metadata: Metadata[] = [];
  readonly whiteouts: string[] = [];
  readonly opaqueDirs: string[] = [];
  readonly devices: { path: string; type: 'c' | 'b' | 'p'; major: number; minor: number }[] = [];
  readonly pendingWrites: Promise<void>[] = [];

  constructor(
    private readonly root: string,
    private readonly fail: (reason: string) => never,
  ) {}

  private ensureParents(path: string): void {
    const parts = path.split('/');
    for (let depth = 1; depth < parts.length; depth += 1) {
      const parent = parts.slice(0, depth).join('/');
      const kind = this.kinds.get(parent);
      if (kind === 'other') this.fail(`entry "${path}" lies under "${parent}", which is not a directory`);
      if (kind === undefined) {
        mkdirSync(join(this.root, parent), { mode: 0o755 });
        this.kinds.set(parent, 'dir');
      }
    }
  }

  /** Makes room for a new entry at `path`, replacing an earlier entry of the same layer. */
  private claim(path: string, kind: 'dir' | 'other'): void {
    this.ensureParents(path);
    const existing = this.kinds.get(path);
    if (existing !== undefined && !(existing === 'dir' && kind === 'dir')) {
      rmSync(join(this.root, path), { recursive: true, force: true });
      for (const key of [...this.kinds.keys()]) if (key.startsWith(`${path}/`)) this.kinds.delete(key);
    }
    this.kinds.set(path, kind);
  }

  handle(entry: ReadEntry): void {
    const path = cleanPath(entry.path, this.fail);
    const whiteout = classifyWhiteout(path);
    if (whiteout !== undefined) {
      if (whiteout.kind === 'opaque') {
        this.ensureParents(`${whiteout.dir}/x`.replace(/^\//, ''));
        this.opaqueDirs.push(whiteout.dir);
      } else if (whiteout.kind === 'whiteout') {
        this.claim(whiteout.path, 'other');
        this.whiteouts.push(whiteout.path);
      }
      entry.resume();
      return;
    }
    const meta: Metadata = {
      path,
      symlink: false,
      hardlink: false,
      mode: (entry.mode ?? 0o644) & 0o7777,
      uid: entry.uid ?? 0,
      gid: entry.gid ?? 0,
      mtime: entry.mtime,
    };
    const absolute = join(this.root, path);
    switch (entry.type) {
      case 'Directory':
        if (path !== '') {
          this.claim(path, 'dir');
          if (!existsSync(absolute)) mkdirSync(absolute, { mode: 0o700 });
        }
        break;
      case 'File':
      case 'OldFile':
      case 'ContiguousFile': {
        if (path === '') this.fail('a file entry names the layer root');
        this.claim(path, 'other');
        // Opened synchronously so that a hardlink in the next entry finds the file.
        const fd = openSync(absolute, 'w', 0o600);
        const output = createWriteStream('', { fd });
        this.pendingWrites.push(once(output, 'close').then(() => undefined));
        entry.pipe(output);
        this.metadata.push(meta);
        return;
      }
      case 'SymbolicLink':
        this.claim(path, 'other');
        symlinkSync(entry.linkpath ?? '', absolute);
        meta.symlink = true;
        break;
      case 'Link': {
        const target = cleanPath(entry.linkpath ?? '', this.fail);
        if (this.kinds.get(target) !== 'other' || lstatSync(join(this.root, target)).isSymbolicLink()) {
          this.fail(`hardlink "${path}" points at "${target}", which is not a file of this layer`);
        }
        this.claim(path, 'other');
        linkSync(join(this.root, target), absolute);
        meta.hardlink = true;
        break;
      }
      case 'CharacterDevice':
      case 'BlockDevice':
      case 'FIFO':
        this.claim(path, 'other');
        this.devices.push({
          path,
          type: entry.type === 'FIFO' ? 'p' : entry.type === 'BlockDevice' ? 'b' : 'c',
          major: entry.header.devmaj ?? 0,
          minor: entry.header.devmin ?? 0,
        });
        break;
      default:
        // Meta entries (pax headers, long names) are folded into the next entry by the parser.
        break;
    }
    entry.resume();
    this.metadata.push(meta);
  }

  /** After every entry: special files, then owners/modes/mtimes, then opaque markers. */
  async finish(): Promise<void> {
    await Promise.all(this.pendingWrites);
    for (const device of this.devices) {
      const numbers = device.type === 'p' ? [] : [String(device.major), String(device.minor)];
      await run('mknod', [join(this.root, device.path), device.type, ...numbers]);
    }
    for (const path of this.whiteouts) await run('mknod', [join(this.root, path), 'c', '0', '0']);
    const asRoot = process.getuid?.() === 0;
    for (const meta of this.metadata) {
      const absolute = join(this.root, meta.path);
      if (meta.symlink) {
        if (asRoot) await lchown(absolute, meta.uid, meta.gid);
        if (meta.mtime) await lutimes(absolute, meta.mtime, meta.mtime);
        continue;
      }
      if (meta.hardlink) continue; // shares the target's inode and metadata
      if (asRoot) await chown(absolute, meta.uid, meta.gid);
      await chmod(absolute, meta.mode); // after chown, which clears setuid bits
      if (meta.mtime) await utimes(absolute, meta.mtime, meta.mtime);
    }
    if (this.opaqueDirs.length > 0) await setOpaque(this.opaqueDirs.map((dir) => join(this.root, dir)));
  }
}

/** Sets `trusted.overlay.opaque=y` on each directory: setfattr (package `attr`) if present, else python3. */
async function setOpaque(dirs: string[]): Promise<void> {
  if (existsSync(SETFATTR)) {
    for (const dir of dirs) await run(SETFATTR, ['-n', 'trusted.overlay.opaque', '-v', 'y', dir]);
    return;
  }
  const script = 'import os, sys\nfor p in sys.argv[1:]: os.setxattr(p, "trusted.overlay.opaque", b"y", follow_symlinks=False)';
  await run('python3', ['-c', script, ...dirs]);
}

async function isGzip(blobPath: string): Promise<boolean> {
  const handle = await open(blobPath, 'r');
  try {
    const magic = Buffer.alloc(2);
    const { bytesRead } = await handle.read(magic, 0, 2, 0);
    return bytesRead === 2 && magic[0] === 0x1f && magic[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/**
 * Unpacks `blobPath` into the existing empty directory `targetDir` and returns the sha256 of the
 * uncompressed tar (the layer's diff id). When `expectedDiffId` is given and differs, throws
 * `digest_mismatch`; the caller then discards `targetDir`.
 */
export async function unpackLayer(blobPath: string, targetDir: string, context: string, expectedDiffId?: string): Promise<string> {
  const fail = (reason: string): never => {
    throw new ImageError('unsupported_media_type', `cannot unpack layer of ${context}: ${reason}`);
  };
  const writer = new LayerWriter(targetDir, fail);
  const parser = new Parser({ strict: true, onReadEntry: (entry) => writer.handle(entry) });
  const parsed = new Promise<void>((resolve, reject) => {
    parser.on('end', resolve);
    parser.on('error', reject);
  });
  parsed.catch(() => undefined); // observed below; avoids an unhandled rejection while we stream
  const hash = createHash('sha256');
  const file = createReadStream(blobPath);
  const source = (await isGzip(blobPath)) ? file.pipe(createGunzip()) : file;
  let total = 0;
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      total += chunk.length;
      if (total > MAX_LAYER_UNPACKED_BYTES) fail(`it inflates beyond ${MAX_LAYER_UNPACKED_BYTES} bytes`);
      hash.update(chunk);
      if (!parser.write(chunk)) await once(parser, 'drain');
    }
  } catch (error) {
    if (error instanceof ImageError) throw error;
    fail(`blob cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  } finally {
    file.destroy();
  }
  parser.end();
  try {
    await parsed;
  } catch (error) {
    if (error instanceof ImageError) throw error;
    fail(`tar stream is invalid: ${error instanceof Error ? error.message : String(error)}`);
  }
  await writer.finish();
  const diffId = `sha256:${hash.digest('hex')}`;
  if (expectedDiffId !== undefined && diffId !== expectedDiffId) {
    throw new ImageError('digest_mismatch', `cannot unpack layer of ${context}: uncompressed digest ${diffId} differs from diff_id ${expectedDiffId}`);
  }
  return diffId;
}
