import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { writeTar, type TarEntry } from '../../deploy/images/tar-writer.js';
import { classifyWhiteout, unpackLayer } from './layer-unpack.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});
async function layer(entries: TarEntry[], gzip: boolean): Promise<{ blob: string; target: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'skiff-layer-unpack-'));
  dirs.push(dir);
  const tar = writeTar(entries, 1_000_000);
  await writeFile(join(dir, 'blob'), gzip ? gzipSync(tar) : tar);
  await mkdir(join(dir, 'out'));
  return { blob: join(dir, 'blob'), target: join(dir, 'out') };
}
const file = (path: string, content = '', mode = 0o644): TarEntry => ({ kind: 'file', path, mode, content: Buffer.from(content) });
const isRoot = process.getuid?.() === 0;

function xattr(path: string, name: string): string {
  const script = 'import os,sys\ntry:\n print(os.getxattr(sys.argv[1], sys.argv[2]).decode())\nexcept OSError:\n print("")';
  return execFileSync('python3', ['-c', script, path, name], { encoding: 'utf8' }).trim();
}

describe('layer unpack', () => {
  it('classifyWhiteout tells whiteouts, opaque markers and aufs bookkeeping apart', () => {
    expect(classifyWhiteout('etc/.wh.passwd')).toEqual({ kind: 'whiteout', path: 'etc/passwd' });
    expect(classifyWhiteout('.wh.top')).toEqual({ kind: 'whiteout', path: 'top' });
    expect(classifyWhiteout('var/lib/.wh..wh..opq')).toEqual({ kind: 'opaque', dir: 'var/lib' });
    expect(classifyWhiteout('.wh..wh.plnk')).toEqual({ kind: 'ignored' });
    expect(classifyWhiteout('etc/passwd.wh.x')).toBeUndefined();
  });

  it('unpacks gzip and plain tar with modes, symlinks and the diff id of the plain tar', async () => {
    const entries: TarEntry[] = [
      { kind: 'directory', path: 'bin', mode: 0o755 },
      file('bin/tool', '#!/bin/sh\n', 0o4755),
      { kind: 'symlink', path: 'bin/abs', target: '/bin/tool' },
      { kind: 'directory', path: 'tmp', mode: 0o1777 },
    ];
    for (const gzip of [true, false]) {
      const { blob, target } = await layer(entries, gzip);
      const diffId = await unpackLayer(blob, target, '"t"');
      expect(diffId).toMatch(/^sha256:[a-f0-9]{64}$/);
      expect(statSync(join(target, 'bin/tool')).mode & 0o7777).toBe(0o4755);
      expect(statSync(join(target, 'tmp')).mode & 0o7777).toBe(0o1777);
      expect(readlinkSync(join(target, 'bin/abs'))).toBe('/bin/tool');
      expect(statSync(join(target, 'bin/tool')).mtimeMs).toBe(1_000_000_000);
    }
  });

  it('refuses a diff id mismatch and paths that escape or pass through a symlink', async () => {
    const plain = await layer([file('a', 'x')], false);
    await expect(unpackLayer(plain.blob, plain.target, '"t"', `sha256:${'0'.repeat(64)}`)).rejects.toMatchObject({ code: 'digest_mismatch' });
    const through = await layer([{ kind: 'symlink', path: 'etc', target: '/etc' }, file('etc/evil', 'x')], false);
    await expect(unpackLayer(through.blob, through.target, '"t"')).rejects.toThrow(/lies under "etc", which is not a directory/);
    expect(existsSync('/etc/evil')).toBe(false);
  });

  it.skipIf(!isRoot)('keeps owners and setuid bits as root', async () => {
    const { blob, target } = await layer(
      [
        { kind: 'directory', path: 'home', mode: 0o750, uid: 1000, gid: 1001 },
        { kind: 'file', path: 'home/su', mode: 0o4755, content: Buffer.from('x'), uid: 0, gid: 1001 },
      ],
      false,
    );
    await unpackLayer(blob, target, '"t"');
    expect(statSync(join(target, 'home'))).toMatchObject({ uid: 1000, gid: 1001 });
    expect(statSync(join(target, 'home')).mode & 0o7777).toBe(0o750);
    expect(statSync(join(target, 'home/su'))).toMatchObject({ uid: 0, gid: 1001 });
    expect(statSync(join(target, 'home/su')).mode & 0o7777).toBe(0o4755);
  });

  it.skipIf(!isRoot)('converts OCI whiteouts to overlayfs whiteouts and opaque dirs', async () => {
    const { blob, target } = await layer(
      [
        { kind: 'directory', path: 'etc', mode: 0o755 },
        file('etc/.wh.gone'),
        { kind: 'directory', path: 'var', mode: 0o755 },
        file('var/.wh..wh..opq'),
        file('var/kept', 'k'),
        file('.wh..wh.plnk'),
      ],
      true,
    );
    await unpackLayer(blob, target, '"t"');
    const whiteout = lstatSync(join(target, 'etc/gone'));
    expect(whiteout.isCharacterDevice()).toBe(true);
    expect(whiteout.rdev).toBe(0);
    expect(existsSync(join(target, 'etc/.wh.gone'))).toBe(false);
    expect(xattr(join(target, 'var'), 'trusted.overlay.opaque')).toBe('y');
    expect(xattr(join(target, 'etc'), 'trusted.overlay.opaque')).toBe('');
    expect(existsSync(join(target, 'var/.wh..wh..opq'))).toBe(false);
    expect(readFileSync(join(target, 'var/kept'), 'utf8')).toBe('k');
    expect(existsSync(join(target, '.wh..wh.plnk'))).toBe(false);
  });
});
