import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes, randomInt } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../runtime/command.js';
import { isProcessAlive, pathExists, waitFor } from '../runtime/fs-util.js';
import { BridgeNetwork, hostVethName, NetworkError } from './bridge-network.js';

const CONDITION_TIMEOUT_MS = 10_000;
const POLL_MS = 10;

const suffix = randomBytes(3).toString('hex');
const bridgeName = `skn${suffix}`;
const third = randomInt(200, 255);
/** A container id unique to this run, whose host veth the crash test leaves behind first. */
const crashedId = `crashed-${suffix}`;
let stateDir = '';
let holder: ChildProcess | undefined;

/** A process alone in a new network namespace, standing in for a created container. */
async function spawnNetnsHolder(): Promise<ChildProcess> {
  const child = spawn('unshare', ['--net', '--', '/bin/busybox', 'sleep', '1000'], { stdio: 'ignore' });
  const pid = child.pid ?? 0;
  const ready = await waitFor(async () => {
    const [own, theirs] = await Promise.all([fs.readlink('/proc/self/ns/net'), fs.readlink(`/proc/${pid}/ns/net`).catch(() => '')]);
    return theirs !== '' && theirs !== own && ((await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim() === 'busybox');
  }, CONDITION_TIMEOUT_MS, POLL_MS);
  if (!ready) throw new Error('cannot start a netns holder');
  return child;
}

beforeAll(async () => {
  stateDir = await fs.mkdtemp(path.join(os.tmpdir(), `skiff-net-e2e-${suffix}-`));
});

afterAll(async () => {
  if (holder?.pid !== undefined && isProcessAlive(holder.pid)) holder.kill('SIGKILL');
  await runCommand('ip', ['link', 'del', 'dev', hostVethName('c1')]);
  await runCommand('ip', ['link', 'del', 'dev', hostVethName(crashedId)]);
  await runCommand('ip', ['link', 'del', 'dev', hostVethName('c3')]);
  await runCommand('ip', ['link', 'del', 'dev', bridgeName]);
  await fs.rm(stateDir, { recursive: true, force: true });
});

describe('BridgeNetwork', () => {
  it('bridge is created once with the gateway address, and reused', async () => {
    const network = new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` });
    await network.ensureBridge();
    await network.ensureBridge();
    await new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` }).ensureBridge();
    const shown = (await runCommand('ip', ['-d', 'addr', 'show', 'dev', bridgeName])).stdout;
    expect(shown).toContain(`inet 198.18.${third}.1/24`);
    expect(shown).toMatch(/\bbridge\b/);
    expect(shown.match(/inet /g)).toHaveLength(1);
    await expect(new BridgeNetwork({ stateDir, bridgeName: 'lo', bridgeSubnet: '198.18.199.0/24' }).ensureBridge()).rejects.toThrow(/another type/);
  });

  it('attach gives the namespace eth0, an address and a default route; detach undoes it', async () => {
    const network = new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` });
    holder = await spawnNetnsHolder();
    const pid = holder.pid ?? 0;
    const address = await network.reserve('c1');
    await network.attach('c1', pid, address);
    const inside = (await runCommand('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'addr', 'show', 'dev', 'eth0'])).stdout;
    expect(inside).toContain(`inet ${address}/24`);
    const routes = (await runCommand('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'route'])).stdout;
    expect(routes).toContain(`default via 198.18.${third}.1 dev eth0`);
    expect((await runCommand('ip', ['link', 'show', 'master', bridgeName])).stdout).toContain(hostVethName('c1'));
    const ping = await runCommand('/bin/busybox', ['ping', '-c', '1', '-W', '2', address], { timeoutMs: 5_000 });
    expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);

    await network.detach('c1');
    await network.detach('c1');
    expect((await runCommand('ip', ['link', 'show', 'dev', hostVethName('c1')])).exitCode).not.toBe(0);
    expect(await network.addressesOf('c1')).toEqual([]);
    expect(await pathExists(path.join(stateDir, 'network', 'ipam', bridgeName, address))).toBe(false);
  });

  it('attach replaces a host veth of the same name left by a crash', async () => {
    const network = new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` });
    const leftover = hostVethName(crashedId);
    const made = await runCommand('ip', ['link', 'add', 'name', leftover, 'type', 'veth', 'peer', 'name', `skp${suffix}`]);
    expect(made.exitCode, made.stderr).toBe(0);
    const other = await spawnNetnsHolder();
    try {
      const address = await network.reserve(crashedId);
      await network.attach(crashedId, other.pid ?? 0, address);
      const shown = (await runCommand('ip', ['-d', 'link', 'show', 'dev', leftover])).stdout;
      expect(shown).toMatch(/\bveth\b/);
      expect(shown).toContain(`master ${bridgeName}`);
      const inside = (await runCommand('nsenter', [`--net=/proc/${other.pid ?? 0}/ns/net`, 'ip', 'addr', 'show', 'dev', 'eth0'])).stdout;
      expect(inside).toContain(`inet ${address}/24`);
      await network.detach(crashedId);
      expect((await runCommand('ip', ['link', 'show', 'dev', leftover])).exitCode).not.toBe(0);
    } finally {
      other.kill('SIGKILL');
    }
  });

  it('createNamespace makes a bound netns with eth0 addressed and routed; plugHost puts its veth on the bridge', async () => {
    const network = new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` });
    const netnsPath = path.join(stateDir, 'netns-c3');
    await fs.writeFile(netnsPath, '');
    const address = await network.reserve('c3');
    try {
      await network.createNamespace('c3', netnsPath, address);
      const inside = (await runCommand('nsenter', [`--net=${netnsPath}`, 'ip', 'addr', 'show', 'dev', 'eth0'])).stdout;
      expect(inside).toContain(`inet ${address}/24`);
      const routes = (await runCommand('nsenter', [`--net=${netnsPath}`, 'ip', 'route'])).stdout;
      expect(routes).toContain(`default via 198.18.${third}.1 dev eth0`);
      expect((await runCommand('ip', ['link', 'show', 'master', bridgeName])).stdout).not.toContain(hostVethName('c3'));

      await network.plugHost('c3', netnsPath);
      expect((await runCommand('ip', ['link', 'show', 'master', bridgeName])).stdout).toContain(hostVethName('c3'));
      const ping = await runCommand('/bin/busybox', ['ping', '-c', '1', '-W', '2', address], { timeoutMs: 5_000 });
      expect(ping.exitCode, ping.stdout + ping.stderr).toBe(0);
    } finally {
      await runCommand('umount', [netnsPath]);
    }
    // Unbound and without processes, the namespace goes, and its veth pair with it.
    expect(await waitFor(async () => (await runCommand('ip', ['link', 'show', 'dev', hostVethName('c3')])).exitCode !== 0, CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    await network.detach('c3');
    expect(await network.addressesOf('c3')).toEqual([]);
  });

  it('createNamespace replaces a host veth of the same name left by a crash', async () => {
    const network = new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` });
    const id = `${crashedId}-ns`;
    const leftover = hostVethName(id);
    const made = await runCommand('ip', ['link', 'add', 'name', leftover, 'type', 'veth', 'peer', 'name', `skq${suffix}`]);
    expect(made.exitCode, made.stderr).toBe(0);
    const netnsPath = path.join(stateDir, 'netns-crashed');
    await fs.writeFile(netnsPath, '');
    try {
      const address = await network.reserve(id);
      await network.createNamespace(id, netnsPath, address);
      await network.plugHost(id, netnsPath);
      const shown = (await runCommand('ip', ['-d', 'link', 'show', 'dev', leftover])).stdout;
      expect(shown).toMatch(/\bveth\b/);
      expect(shown).toContain(`master ${bridgeName}`);
      const inside = (await runCommand('nsenter', [`--net=${netnsPath}`, 'ip', 'addr', 'show', 'dev', 'eth0'])).stdout;
      expect(inside).toContain(`inet ${address}/24`);
      await network.detach(id);
      expect((await runCommand('ip', ['link', 'show', 'dev', leftover])).exitCode).not.toBe(0);
    } finally {
      await runCommand('umount', [netnsPath]);
      await runCommand('ip', ['link', 'del', 'dev', leftover]);
    }
  });

  it('attach to a vanished namespace fails with a NetworkError', async () => {
    const network = new BridgeNetwork({ stateDir, bridgeName, bridgeSubnet: `198.18.${third}.0/24` });
    const pid = holder?.pid ?? 0;
    holder?.kill('SIGKILL');
    expect(await waitFor(() => !isProcessAlive(pid), CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    const address = await network.reserve('c2');
    await expect(network.attach('c2', pid, address)).rejects.toBeInstanceOf(NetworkError);
    await network.detach('c2');
    expect(await network.addressesOf('c2')).toEqual([]);
  });
});
