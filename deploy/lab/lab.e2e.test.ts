// The lab on real kernel objects: namespaces, a bridge, veths, a registry and (when bin/skiffd is
// built) one skiffd per host. Unique names per run; everything is removed in afterAll even when a
// test fails, and a test asserts that nothing is left behind.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadContext } from '../../cli/context.js';
import { repositoryRoot } from './daemons.js';
import { labDown, labExec, labKill, labRestart, labStart, labStatus, labUp, leftovers, type LabState } from './index.js';
import { run } from './system.js';

const isRoot = process.getuid?.() === 0;
const skiffdBuilt = existsSync(join(repositoryRoot(), 'dist', 'cli', 'skiffd.js'));

function uniqueLabName(): string {
  // 't' + 7 random base-36 characters: valid ([a-z0-9]{1,8}) and unlikely to meet another run.
  return `t${BigInt(`0x${randomBytes(8).toString('hex')}`).toString(36).slice(0, 7)}`;
}

let home: string;
const savedHome = process.env['SKIFF_HOME'];
beforeAll(async () => {
  home = await mkdtemp(join(tmpdir(), 'skiff-lab-e2e-'));
  process.env['SKIFF_HOME'] = home;
});
afterAll(async () => {
  await rm(home, { recursive: true, force: true });
  if (savedHome === undefined) delete process.env['SKIFF_HOME'];
  else process.env['SKIFF_HOME'] = savedHome;
});

describe.skipIf(!isRoot)('lab networking, registry and teardown', () => {
  const name = uniqueLabName();
  let state: LabState;

  beforeAll(async () => {
    state = await labUp({ name, managers: 1, workers: 2, startDaemons: false });
  });
  afterAll(async () => {
    // Cleanup even when a test failed; a failure here fails the run loudly.
    if ((await leftovers(name)).length > 0) await labDown(name);
  });

  function host(hostName: string): LabState['hosts'][number] {
    const found = state.hosts.find((candidate) => candidate.name === hostName);
    if (found === undefined) throw new Error(`no host ${hostName}`);
    return found;
  }

  it('creates one netns per host on the lab bridge, managers first, with no route off the lab', async () => {
    expect(state.hosts.map((entry) => [entry.name, entry.role])).toEqual([['h1', 'manager'], ['h2', 'worker'], ['h3', 'worker']]);
    const netns = (await run('ip', ['netns', 'list'])).stdout;
    for (const entry of state.hosts) expect(netns).toContain(`skiff-${name}-${entry.name}`);
    const bridge = await run('ip', ['-br', 'addr', 'show', 'dev', `sk-${name}`]);
    expect(bridge.stdout).toContain(`${state.bridgeAddr}/24`);
    for (const entry of state.hosts) {
      const veth = await run('ip', ['-o', 'link', 'show', 'dev', `sk${name}${entry.name}`]);
      expect(veth.stdout).toContain(`master sk-${name}`);
      const address = await labExec(name, entry.name, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0']);
      expect(address.stdout).toContain(`${entry.addr}/24`);
      expect((await labExec(name, entry.name, ['ip', '-4', 'route'])).stdout).not.toContain('default');
    }
  });

  it('hosts reach each other and the registry over the lab bridge', async () => {
    // No `wget -T`: Debian's busybox-static 1.35 segfaults on it; labExec has its own timeout.
    expect((await labExec(name, 'h1', ['busybox', 'ping', '-c1', '-W1', host('h2').addr])).code).toBe(0);
    expect((await labExec(name, 'h3', ['busybox', 'ping', '-c1', '-W1', host('h1').addr])).code).toBe(0);
    const tags = await labExec(name, 'h2', ['busybox', 'wget', '-q', '-O', '-', `http://${state.registry.addr}/v2/demo/web/tags/list`]);
    expect(tags).toMatchObject({ code: 0 });
    expect(JSON.parse(tags.stdout)).toMatchObject({ name: 'demo/web', tags: expect.arrayContaining(['v1', 'v2', 'v3']) });
  });

  it('lab exec returns the command exit code and output', async () => {
    expect(await labExec(name, 'h2', ['sh', '-c', 'echo out; echo err >&2; exit 7'])).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    expect((await labExec(name, 'h1', ['true'])).code).toBe(0);
    await expect(labExec(name, 'h9', ['true'])).rejects.toThrow(/cannot find host "h9"/);
  });

  it('lab status lists hosts and the registry; the CLI context points at the lab', async () => {
    const status = await labStatus(name);
    expect(status.registry).toBe(state.registry.addr);
    expect(status.registryPid).toBeGreaterThan(0);
    expect(status.hosts.map(({ name: hostName, addr, role, pid, dataDir }) => ({ hostName, addr, role, pid, dataDir }))).toEqual(
      state.hosts.map((entry) => ({ hostName: entry.name, addr: entry.addr, role: entry.role, pid: 0, dataDir: `/var/lib/skiff-lab/${name}/${entry.name}` })),
    );
    expect(await loadContext()).toMatchObject({ name, managers: [`${host('h1').addr}:4242`] });
  });

  it('lab up again is idempotent, and a second lab gets its own subnet', async () => {
    const again = await labUp({ name, startDaemons: false });
    expect(again.subnetIndex).toBe(state.subnetIndex);
    expect(again.hosts.map((entry) => entry.nodeId)).toEqual(state.hosts.map((entry) => entry.nodeId));
    const other = uniqueLabName();
    try {
      const second = await labUp({ name: other, managers: 1, workers: 0, startDaemons: false });
      expect(second.subnetIndex).not.toBe(state.subnetIndex);
      expect((await labExec(other, 'h1', ['busybox', 'ping', '-c1', '-W1', second.bridgeAddr])).code).toBe(0);
    } finally {
      await labDown(other);
    }
    expect(await leftovers(other)).toEqual([]);
  });

  it('lab down removes every namespace, link, mount, cgroup, process and file', async () => {
    await labDown(name);
    expect(await leftovers(name)).toEqual([]);
    await expect(loadContext(name)).rejects.toThrow(/cannot find context/);
  });
});

describe.skipIf(!isRoot)('lab down after an aborted up', () => {
  const name = uniqueLabName();
  afterAll(async () => {
    if ((await leftovers(name)).length > 0) await labDown(name);
  });

  it('lab down finds a lab\'s objects by name when lab.json never got written', async () => {
    // What an `up` killed half-way leaves: a netns with its veth, a bridge, a cgroup with a
    // process in the netns, and a data dir, but no lab.json.
    await run('ip', ['netns', 'add', `skiff-${name}-h1`]);
    await run('ip', ['link', 'add', `sk-${name}`, 'type', 'bridge']);
    await run('ip', ['link', 'add', `sk${name}h1`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `skiff-${name}-h1`]);
    await mkdir(`/var/lib/skiff-lab/${name}/h1`, { recursive: true });
    await mkdir(`/sys/fs/cgroup/pids/skiff-lab-${name}/h1-daemon`, { recursive: true });
    const sleeper = spawn('nsenter', [`--net=/var/run/netns/skiff-${name}-h1`, '--', 'sleep', '600'], { stdio: 'ignore', detached: true });
    sleeper.unref();
    expect((await leftovers(name)).length).toBeGreaterThanOrEqual(5);
    await labDown(name);
    expect(await leftovers(name)).toEqual([]);
  });
});

describe.skipIf(!isRoot || !skiffdBuilt)('lab skiffd lifecycle', () => {
  const name = uniqueLabName();

  beforeAll(async () => {
    await labUp({ name, managers: 1, workers: 1 });
  });
  afterAll(async () => {
    if ((await leftovers(name)).length > 0) await labDown(name);
  });

  it('starts one skiffd per host, restarts, kills and starts them', async () => {
    const status = await labStatus(name);
    for (const entry of status.hosts) expect(entry.pid).toBeGreaterThan(0);
    const before = status.hosts.find((entry) => entry.name === 'h2')?.pid;
    const restarted = await labRestart(name, 'h2');
    expect(restarted.pid).not.toBe(before);
    await labKill(name, 'h2');
    expect((await labStatus(name)).hosts.find((entry) => entry.name === 'h2')?.pid).toBe(0);
    expect((await labStart(name, 'h2')).pid).toBeGreaterThan(0);
    await labDown(name);
    expect(await leftovers(name)).toEqual([]);
  });
});
