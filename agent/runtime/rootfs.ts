/**
 * The container's filesystem: an overlayfs rootfs from the image layers (read-only lowers, a
 * per-container upper), and the /etc files the runtime bind-mounts (hosts, resolv.conf, hostname).
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { runCommand, runChecked } from './command.js';
import { readTextIfExists } from './fs-util.js';

/** mount(2) data is one page; past this we switch to short relative layer links. */
const MAX_OVERLAY_OPTIONS_LENGTH = 3500;
/** Used when the host's resolv.conf has no usable (non-loopback) nameserver; Docker does the same. */
const FALLBACK_NAMESERVERS = ['8.8.8.8', '8.8.4.4'];
const MOUNT_TIMEOUT_MS = 15_000;

export interface OverlayDirs {
  rootfs: string;
  upper: string;
  work: string;
  /** Directory for short layer links when the options would be too long. */
  links: string;
}

/** Mounts overlayfs at dirs.rootfs; layerDirs are base first, so lowerdir lists them reversed. */
export async function mountOverlay(layerDirs: readonly string[], dirs: OverlayDirs): Promise<void> {
  await Promise.all([dirs.rootfs, dirs.upper, dirs.work].map((dir) => fs.mkdir(dir, { recursive: true })));
  const topFirst = [...layerDirs].reverse();
  let options = `lowerdir=${topFirst.join(':')},upperdir=${dirs.upper},workdir=${dirs.work}`;
  let cwd: string | undefined;
  if (options.length > MAX_OVERLAY_OPTIONS_LENGTH) {
    // Like Docker's "l/" links: short relative names resolved against the mount's cwd.
    await fs.mkdir(dirs.links, { recursive: true });
    await Promise.all(topFirst.map((dir, index) => fs.symlink(dir, path.join(dirs.links, String(index)))));
    const base = path.basename(dirs.links);
    options = `lowerdir=${topFirst.map((_dir, index) => `${base}/${index}`).join(':')},upperdir=${dirs.upper},workdir=${dirs.work}`;
    cwd = path.dirname(dirs.links);
  }
  await runChecked('mount the overlay rootfs', 'mount', ['-t', 'overlay', 'overlay', '-o', options, dirs.rootfs], {
    timeoutMs: MOUNT_TIMEOUT_MS,
    ...(cwd === undefined ? {} : { cwd }),
  });
}

/** Mount points at or below `dir`, deepest first, from /proc/self/mountinfo. */
export async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = (await readTextIfExists('/proc/self/mountinfo')) ?? '';
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map(unescapeMountPath)
    .filter((point) => point === dir || point.startsWith(prefix));
  return [...new Set(points)].sort((left, right) => right.length - left.length);
}

/** Unmounts everything at or below `dir` (lazily when busy). Missing mounts are fine. */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (const point of await mountsUnder(dir)) {
    const result = await runCommand('umount', [point], { timeoutMs: MOUNT_TIMEOUT_MS });
    if (result.exitCode !== 0 && (await mountsUnder(point)).includes(point)) {
      await runChecked(`unmount ${point}`, 'umount', ['-l', point], { timeoutMs: MOUNT_TIMEOUT_MS });
    }
  }
}

/** /etc/hosts for a container: loopback names plus its own address and hostname. */
export function hostsFileContent(hostname: string, addresses: readonly string[]): string {
  const lines = ['127.0.0.1\tlocalhost', '::1\tlocalhost ip6-localhost ip6-loopback'];
  for (const address of addresses) lines.push(`${address}\t${hostname}`);
  return `${lines.join('\n')}\n`;
}

/**
 * The host's resolv.conf without loopback nameservers (unreachable from the container's netns);
 * with `nameserver` (the embedded resolver, which forwards to the host's servers), that one only,
 * and `ndots:0` so a service name is asked as it is before any search domain.
 */
export function containerResolvConf(hostResolvConf: string | undefined, nameserver?: string): string {
  const lines = (hostResolvConf ?? '').split('\n');
  if (nameserver !== undefined) {
    const kept = lines.filter((line) => /^\s*(search|domain)\s/.test(line));
    return `${[`nameserver ${nameserver}`, ...kept, 'options ndots:0'].join('\n')}\n`;
  }
  const kept = lines.filter((line) => {
    const match = /^\s*nameserver\s+(\S+)/.exec(line);
    return match === null || !isLoopback(match[1] ?? '');
  });
  if (!kept.some((line) => /^\s*nameserver\s/.test(line))) {
    kept.push(...FALLBACK_NAMESERVERS.map((server) => `nameserver ${server}`));
  }
  return `${kept.filter((line) => line.trim() !== '').join('\n')}\n`;
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

function unescapeMountPath(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_match, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
