/**
 * Isolation options and mounts on a real runtime (runc, conmon, a busybox layer): what the
 * container itself sees, written to its log, and what the host sees in /proc.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './command.js';
import { pathExists, readTextIfExists, waitFor } from './fs-util.js';
import { cleanupRuntimeState, createRuntime, volumeDataDir, type ContainerInfo, type ContainerRequest, type Runtime } from './index.js';
import { mountsUnder } from './rootfs.js';
import { makeScratch, type Scratch } from './testing/busybox-layer.js';

const CONDITION_TIMEOUT_MS = 10_000;
const POLL_MS = 20;
/** CAP_NET_RAW and CAP_SYS_PTRACE bit numbers. */
const CAP_NET_RAW = 13;
const CAP_SYS_PTRACE = 19;

let scratch: Scratch;
let runtime: Runtime;
let hostDir: string;

function request(containerId: string, argv: string[], overrides: Partial<ContainerRequest> = {}): ContainerRequest {
  return {
    containerId, hostname: containerId, layerDirs: [scratch.layerDir], argv, env: [], user: '', workingDir: '',
    memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, labels: {}, files: [], ...overrides,
  };
}

async function logOf(info: ContainerInfo, marker: string): Promise<string> {
  const read = async (): Promise<string> => (await readTextIfExists(info.logPath)) ?? '';
  expect(await waitFor(async () => (await read()).includes(marker), CONDITION_TIMEOUT_MS, POLL_MS), await read()).toBe(true);
  return read();
}

function capabilityBits(status: string, field: string): bigint {
  const hex = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status)?.[1];
  if (hex === undefined) throw new Error(`no ${field} in status`);
  return BigInt(`0x${hex}`);
}

beforeAll(async () => {
  scratch = await makeScratch('iso-e2e');
  hostDir = path.join(scratch.baseDir, 'host-share');
  await fs.mkdir(hostDir);
  await fs.writeFile(path.join(hostDir, 'greeting'), 'from the host\n');
  runtime = await createRuntime({
    stateDir: scratch.stateDir,
    runcRoot: scratch.runcRoot,
    cgroupParent: scratch.cgroupParent,
    bridgeName: scratch.bridgeName,
    bridgeSubnet: scratch.bridgeSubnet,
    secretsDir: path.join(scratch.baseDir, 'secrets'),
  }, { logger: { info: () => undefined, warn: (message, fields) => console.warn(message, fields) } });
});

afterAll(async () => {
  await runtime?.close();
  if (scratch === undefined) return;
  await cleanupRuntimeState({ stateDir: scratch.stateDir, runcRoot: scratch.runcRoot, cgroupParent: scratch.cgroupParent, secretsDir: path.join(scratch.baseDir, 'secrets') }).catch((error: unknown) => console.error(error));
  await runCommand('ip', ['link', 'del', 'dev', scratch.bridgeName]);
  if ((await mountsUnder(scratch.baseDir)).length === 0) await fs.rm(scratch.baseDir, { recursive: true, force: true });
});

describe('isolation options on runc', () => {
  it('read-only rootfs, cap add/drop, sysctl, ulimit, init, volume, tmpfs and bind mounts as the container sees them', async () => {
    const script = [
      'busybox touch /rootfs-file 2>&1; echo "rootfs exit=$?"',
      'echo "10.0.0.9 extra" >> /etc/hosts; echo "hosts exit=$?"',
      'echo kept > /data/kept; echo "volume exit=$?"',
      'echo x > /scratch/x; echo "tmpfs exit=$?"',
      'echo "tmpfs mode=$(busybox stat -c %a /scratch)"',
      'echo "bind read=$(cat /host/greeting)"',
      'echo x > /host/new 2>&1; echo "bind write exit=$?"',
      'echo "www from image=$(cat /www/index.html)"',
      'echo "port start=$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start)"',
      'echo "nofile=$(ulimit -n) hard=$(ulimit -Hn)"',
      'echo "pid1=$(cat /proc/1/cmdline | tr "\\0" " ")"',
      'echo "secret=$(cat /run/secrets/token)"',
      'echo done; exec sleep 1000',
    ].join('; ');
    const info = await runtime.run(request('iso', ['sh', '-c', script], {
      readOnlyRootfs: true,
      capDrop: ['net_raw'],
      capAdd: ['CAP_SYS_PTRACE'],
      sysctls: { 'net.ipv4.ip_unprivileged_port_start': '80' },
      ulimits: [{ name: 'nofile', soft: 64, hard: 128 }],
      init: true,
      files: [{ containerPath: '/run/secrets/token', data: new TextEncoder().encode('s3cret'), uid: 0, gid: 0, mode: 0o400 }],
      mounts: [
        { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
        { type: 'volume', source: 'site', target: '/www', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
        { type: 'tmpfs', source: '', target: '/scratch', readOnly: false, tmpfsSizeBytes: 1 << 20, tmpfsMode: 0o700 },
        { type: 'bind', source: hostDir, target: '/host', readOnly: true, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      ],
    }));
    // The line "done" itself: the pid1 line, printed before it, contains "echo done" too.
    const log = await logOf(info, ' F done\n');
    expect(log).toContain('Read-only file system');
    expect(log).toMatch(/rootfs exit=[1-9]/);
    expect(log).toContain('hosts exit=0');
    expect(log).toContain('volume exit=0');
    expect(log).toContain('tmpfs exit=0');
    expect(log).toContain('tmpfs mode=700');
    expect(log).toContain('bind read=from the host');
    expect(log).toMatch(/bind write exit=[1-9]/);
    expect(log).toContain('www from image=hello from skiff');
    expect(log).toContain('port start=80');
    expect(log).toContain('nofile=64 hard=128');
    expect(log).toMatch(/pid1=\/sbin\/skiff-init -- sh -c/);
    expect(log).toContain('secret=s3cret'); // the secrets tmpfs works under a read-only rootfs

    // From the host: tini is the container's init, with the capabilities asked for.
    expect((await fs.readFile(`/proc/${info.pid}/cmdline`, 'utf8')).split('\0')[0]).toBe('/sbin/skiff-init');
    const status = await fs.readFile(`/proc/${info.pid}/status`, 'utf8');
    const effective = capabilityBits(status, 'CapEff');
    expect(effective & (1n << BigInt(CAP_NET_RAW))).toBe(0n);
    expect(effective & (1n << BigInt(CAP_SYS_PTRACE))).not.toBe(0n);
    expect(capabilityBits(status, 'CapBnd') & (1n << BigInt(CAP_NET_RAW))).toBe(0n);
    expect(await fs.readFile(path.join(volumeDataDir(scratch.stateDir, 'data'), 'kept'), 'utf8')).toBe('kept\n');
    expect(await fs.readFile(path.join(volumeDataDir(scratch.stateDir, 'site'), 'index.html'), 'utf8')).toBe('hello from skiff\n');
    expect(await pathExists(path.join(hostDir, 'new'))).toBe(false);

    await runtime.stop('iso', 2_000);
    await runtime.remove('iso');
    expect(await fs.readFile(path.join(volumeDataDir(scratch.stateDir, 'data'), 'kept'), 'utf8')).toBe('kept\n');
  });

  it('a named volume outlives its container; an anonymous one goes with it; the stop signal reaches the container', async () => {
    const script = 'trap \'echo "got INT" > /data/signal; exit 3\' INT; cat /data/kept; echo ready; while true; do sleep 0.1; done';
    const info = await runtime.run(request('stopper', ['sh', '-c', script], {
      mounts: [
        { type: 'volume', source: 'data', target: '/data', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
        { type: 'volume', source: '', target: '/anon', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 },
      ],
    }));
    const log = await logOf(info, 'ready');
    expect(log).toContain('kept'); // written by the previous container
    const anonymous = path.join(scratch.stateDir, 'containers', 'stopper', 'volumes', '1');
    expect(await pathExists(anonymous)).toBe(true);
    const started = Date.now();
    await runtime.stop('stopper', 20_000, 'SIGINT');
    expect(Date.now() - started).toBeLessThan(5_000); // the trap ended it, not the SIGKILL 20 s later
    expect(await runtime.inspect('stopper')).toMatchObject({ status: 'stopped', exitCode: 3 });
    expect(await fs.readFile(path.join(volumeDataDir(scratch.stateDir, 'data'), 'signal'), 'utf8')).toBe('got INT\n');
    await runtime.remove('stopper');
    expect(await pathExists(anonymous)).toBe(false);
    expect(await pathExists(volumeDataDir(scratch.stateDir, 'data'))).toBe(true);
    await expect(runtime.stop('stopper', 100, 'SIGNOPE')).rejects.toMatchObject({ code: 'invalid_request', message: expect.stringContaining('unknown signal "SIGNOPE"') });
  });

  it('refuses a ulimit above the agent hard limit and a missing bind source, naming them', async () => {
    const hardNofile = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(await fs.readFile('/proc/self/limits', 'utf8'))?.[1]);
    await expect(runtime.run(request('too-many', ['true'], { ulimits: [{ name: 'nofile', soft: 10, hard: hardNofile + 1 }] }))).rejects.toMatchObject({
      code: 'invalid_request',
      message: `cannot run container "too-many": ulimits: nofile hard limit ${hardNofile + 1} is above this node's hard limit ${hardNofile} (the agent cannot raise it)`,
    });
    const missing = path.join(scratch.baseDir, 'no-such-dir');
    await expect(runtime.run(request('no-bind', ['true'], { mounts: [{ type: 'bind', source: missing, target: '/x', readOnly: false, tmpfsSizeBytes: 0, tmpfsMode: 0 }] }))).rejects.toMatchObject({
      code: 'invalid_request',
      message: `cannot start container no-bind: mounts[0]: bind source ${missing} does not exist on this node`,
    });
    expect(await runtime.inspect('no-bind')).toBeUndefined();
  });
});
