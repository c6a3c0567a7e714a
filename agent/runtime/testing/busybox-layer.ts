/**
 * Test support: a one-layer "image" made from the host's static busybox, and a scratch area with
 * unique names (state dirs, cgroup parent, bridge, subnet in 198.18.200-254.0/24) per test run.
 */
import { randomBytes, randomInt } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runCommand } from '../command.js';

export const BUSYBOX_PATH = '/bin/busybox';
const APPLETS = ['sh', 'sleep', 'httpd', 'cat', 'hostname', 'wget', 'id', 'ip', 'true', 'ls', 'ps', 'echo', 'head', 'tr'];

/** Builds a busybox rootfs layer with a passwd/group (root, app:1000 in group web:2000) and /www. */
export async function makeBusyboxLayer(dir: string): Promise<void> {
  await fs.mkdir(path.join(dir, 'bin'), { recursive: true });
  await fs.mkdir(path.join(dir, 'etc'), { recursive: true });
  await fs.mkdir(path.join(dir, 'www'), { recursive: true });
  await fs.mkdir(path.join(dir, 'tmp'), { recursive: true, mode: 0o1777 });
  await fs.copyFile(BUSYBOX_PATH, path.join(dir, 'bin', 'busybox'));
  await fs.chmod(path.join(dir, 'bin', 'busybox'), 0o755);
  for (const applet of APPLETS) await fs.symlink('busybox', path.join(dir, 'bin', applet));
  await fs.writeFile(path.join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n');
  await fs.writeFile(path.join(dir, 'etc', 'group'), 'root:x:0:\napp:x:1000:\nweb:x:2000:app\n');
  await fs.writeFile(path.join(dir, 'www', 'index.html'), 'hello from skiff\n');
}

export interface Scratch {
  suffix: string;
  baseDir: string;
  stateDir: string;
  runcRoot: string;
  cgroupParent: string;
  bridgeName: string;
  bridgeSubnet: string;
  bridgePrefix: string;
  layerDir: string;
}

/** Unique names for one test run; the subnet is one not routed on this machine yet. */
export async function makeScratch(label: string): Promise<Scratch> {
  const suffix = randomBytes(3).toString('hex');
  const baseDir = await fs.mkdtemp(path.join(os.tmpdir(), `skiff-${label}-${suffix}-`));
  const routes = (await runCommand('ip', ['-4', 'route', 'show'])).stdout;
  let third = randomInt(200, 255);
  for (let attempt = 0; attempt < 55 && routes.includes(`198.18.${third}.`); attempt += 1) third = 200 + ((third - 199) % 55);
  const layerDir = path.join(baseDir, 'layer');
  await makeBusyboxLayer(layerDir);
  return {
    suffix,
    baseDir,
    stateDir: path.join(baseDir, 'state'),
    runcRoot: path.join(baseDir, 'runc'),
    cgroupParent: `/skiff-test-${suffix}`,
    bridgeName: `skt${suffix}`,
    bridgeSubnet: `198.18.${third}.0/24`,
    bridgePrefix: `198.18.${third}.`,
    layerDir,
  };
}
