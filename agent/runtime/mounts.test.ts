import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareMounts, volumeDataDir } from './mounts.js';
import type { ContainerMount } from './types.js';

let base: string;
let context: { stateDir: string; bundleDir: string; rootfs: string };

const mount = (overrides: Partial<ContainerMount>): ContainerMount => ({ type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0, ...overrides });

beforeEach(async () => {
  base = await fs.mkdtemp(path.join(os.tmpdir(), 'skiff-mounts-'));
  context = { stateDir: path.join(base, 'state'), bundleDir: path.join(base, 'bundle'), rootfs: path.join(base, 'rootfs') };
  await fs.mkdir(path.join(context.rootfs, 'srv', 'site'), { recursive: true });
  await fs.writeFile(path.join(context.rootfs, 'srv', 'site', 'index.html'), 'from the image\n');
  await fs.symlink('/etc', path.join(context.rootfs, 'escape'));
});

afterEach(async () => {
  await fs.rm(base, { recursive: true, force: true });
});

describe('mounts', () => {
  it('mounts come parents first with Docker options for bind, volume and tmpfs', async () => {
    const mounts = await prepareMounts([
      mount({ type: 'tmpfs', source: '', target: '/data/cache/', tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o700, readOnly: true }),
      mount({ type: 'bind', source: base, target: '/host', readOnly: true }),
      mount({}),
    ], context);
    expect(mounts).toEqual([
      { destination: '/host', type: 'bind', source: base, options: ['rbind', 'rprivate', 'ro'] },
      { destination: '/data', type: 'bind', source: volumeDataDir(context.stateDir, 'data'), options: ['rbind', 'rprivate', 'rw'] },
      { destination: '/data/cache', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'nosuid', 'nodev', 'mode=0700', `size=${1 << 20}`, 'ro'] },
    ]);
    const [tmpfs] = await prepareMounts([mount({ type: 'tmpfs', source: '' })], context);
    expect(tmpfs?.options).toEqual(['noexec', 'nosuid', 'nodev', 'mode=1777']);
  });

  it('a new named volume is filled from the image once; later content is kept', async () => {
    await prepareMounts([mount({ source: 'site', target: '/srv/site' })], context);
    const data = volumeDataDir(context.stateDir, 'site');
    expect(await fs.readFile(path.join(data, 'index.html'), 'utf8')).toBe('from the image\n');
    await fs.writeFile(path.join(data, 'index.html'), 'changed\n');
    await prepareMounts([mount({ source: 'site', target: '/srv/site' })], context);
    expect(await fs.readFile(path.join(data, 'index.html'), 'utf8')).toBe('changed\n');
    // Through a symlink of the image nothing is copied: it could lead out of the rootfs.
    await prepareMounts([mount({ source: 'escaped', target: '/escape' })], context);
    expect(await fs.readdir(volumeDataDir(context.stateDir, 'escaped'))).toEqual([]);
    expect((await fs.readdir(path.dirname(data))).filter((name) => name.startsWith('.init-'))).toEqual([]);
  });

  it('concurrent first uses of a volume share one directory; anonymous volumes live in the bundle', async () => {
    const [first, second] = await Promise.all([
      prepareMounts([mount({ source: 'shared', target: '/srv/site' })], context),
      prepareMounts([mount({ source: 'shared', target: '/srv/site' })], context),
    ]);
    expect(first?.[0]?.source).toBe(second?.[0]?.source);
    const [anonymous] = await prepareMounts([mount({ source: '', target: '/anon' })], context);
    expect(anonymous?.source).toBe(path.join(context.bundleDir, 'volumes', '0'));
  });

  it('a missing bind source is refused, naming the mount', async () => {
    const missing = path.join(base, 'nope');
    await expect(prepareMounts([mount({}), mount({ type: 'bind', source: missing, target: '/x' })], context)).rejects.toThrow(`mounts[1]: bind source ${missing} does not exist on this node`);
  });
});
