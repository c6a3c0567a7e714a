/**
 * Issue 7 points 2, 3, 6 and 8 on a lab (1 manager h1, 1 worker h2, real runc): isolation
 * options seen from inside the container and from the host, resource limits (OOM kill, pids limit
 * against a fork bomb), volumes surviving a task replacement, the stop signal, and live restore
 * (a skiffd restart keeps its containers; an exit while skiffd is down is reported once it is back).
 * Every service is pinned to h2 so the volume and the restart checks know where the task runs.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { labDown, labStart, labStatus, labUp, leftovers, readLabState, type LabHost, type LabState } from '../../deploy/lab/index.js';
import { running, skiff, skiffJson, uniqueLab, waitFor, type TaskRow } from './helpers.js';

const { name: lab, home } = uniqueLab('iso');
let state: LabState;
const PIN = ['--constraint', 'node.hostname==h2'];
/** Capability bit numbers (linux/capability.h). */
const CAP = { NET_RAW: 13, SYS_MODULE: 16, SYS_PTRACE: 19, SYS_ADMIN: 21 } as const;
/** Heartbeat period the manager runs with here: a skiffd restart must fit in 3 periods. */
const HEARTBEAT_PERIOD_MS = 3_000;

const h2 = (): LabHost => {
  const host = state.hosts.find((candidate) => candidate.name === 'h2');
  if (host === undefined) throw new Error('no lab host h2');
  return host;
};
const ps = (service: string): Promise<TaskRow[]> => skiffJson<TaskRow[]>(home, ['service', 'ps', service]);
const volumeFile = (volume: string, file: string): string => join(h2().dataDir, 'runtime', 'volumes', volume, '_data', file);
const readIfExists = (path: string): string => (existsSync(path) ? readFileSync(path, 'utf8') : '');

/** `runc exec` in a task's container: the exec'd process gets the container's capabilities, seccomp filter and namespaces. */
function execIn(task: TaskRow, argv: string[]): { code: number; output: string } {
  const result = spawnSync('runc', ['--root', h2().runcRoot, 'exec', task.containerId, ...argv], { encoding: 'utf8', timeout: 30_000 });
  return { code: result.status ?? -1, output: `${result.stdout}${result.stderr}` };
}

async function createService(args: string[]): Promise<void> {
  const created = await skiff(home, ['service', 'create', ...args]);
  expect(created.code, created.stderr).toBe(0);
}

async function runningTask(service: string, what = `a running ${service} task`, except?: string): Promise<TaskRow> {
  return waitFor(what, 60_000, async () => running(await ps(service)).find((row) => row.id !== except));
}

function capabilityBit(status: string, field: string, bit: number): boolean {
  const hex = new RegExp(`^${field}:\\s+([0-9a-f]+)$`, 'm').exec(status)?.[1];
  if (hex === undefined) throw new Error(`no ${field} in /proc status`);
  return (BigInt(`0x${hex}`) & (1n << BigInt(bit))) !== 0n;
}

/** SIGTERM to a host's skiffd; resolves once it has exited (its containers stay). */
async function stopSkiffd(hostName: string): Promise<void> {
  const pid = (await labStatus(lab)).hosts.find((host) => host.name === hostName)?.pid ?? 0;
  expect(pid, `${hostName} skiffd pid`).toBeGreaterThan(0);
  process.kill(pid, 'SIGTERM');
  await waitFor(`skiffd on ${hostName} to exit`, 30_000, async () => (existsSync(`/proc/${pid}`) ? undefined : true), 50);
}

beforeAll(async () => {
  process.env['SKIFF_HOME'] = home;
  state = await labUp({ name: lab, managers: 1, workers: 1 });
  // The manager runs with a longer heartbeat period so a worker restart on a loaded machine stays
  // within the window after which its node counts as down (and its tasks are replaced).
  await stopSkiffd('h1');
  await labStart(lab, 'h1', ['--heartbeat-period-ms', String(HEARTBEAT_PERIOD_MS)]);
  state = (await readLabState(lab)) ?? state;
  await waitFor('2 ready nodes', 60_000, async () => {
    const nodes = await skiffJson<Array<{ status: string }>>(home, ['node', 'ls']);
    return nodes.filter((node) => node.status === 'ready').length === 2 ? nodes : undefined;
  });
});

afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('isolation, resources, mounts, stopping and live restore on the lab', () => {
  let first: TaskRow;

  it('an isolated task: read-only rootfs, capabilities, ulimit, sysctl, init, tmpfs; mount, modules and host processes out of reach', async () => {
    const script = 'trap \'echo "stopped by INT" >> /data/events; exit 0\' INT; echo "start $(hostname)" >> /data/events; while true; do sleep 0.2; done';
    await createService([
      '--name', 'iso', ...PIN, '--read-only', '--cap-drop', 'NET_RAW', '--cap-add', 'CAP_SYS_PTRACE', '--ulimit', 'nofile=100:200',
      '--sysctl', 'net.ipv4.ip_unprivileged_port_start=1024', '--init', '--mount', 'type=volume,src=isodata,dst=/data',
      '--mount', 'type=tmpfs,destination=/scratch,tmpfs-size=1m,tmpfs-mode=1770', '--stop-signal', 'SIGINT', '--stop-grace-period', '30s',
      '--entrypoint', 'sh', 'demo/web:v1', '-c', script,
    ]);
    first = await runningTask('iso');
    expect(first.hostname).toBe('h2');

    // From the host: tini is PID 1, capabilities and limits as asked, no new privileges.
    expect(readFileSync(`/proc/${first.pid}/cmdline`, 'utf8').split('\0')[0]).toBe('/sbin/skiff-init');
    const status = readFileSync(`/proc/${first.pid}/status`, 'utf8');
    expect(capabilityBit(status, 'CapEff', CAP.NET_RAW)).toBe(false);
    expect(capabilityBit(status, 'CapBnd', CAP.NET_RAW)).toBe(false);
    expect(capabilityBit(status, 'CapEff', CAP.SYS_PTRACE)).toBe(true);
    expect(capabilityBit(status, 'CapBnd', CAP.SYS_ADMIN)).toBe(false);
    expect(capabilityBit(status, 'CapBnd', CAP.SYS_MODULE)).toBe(false);
    expect(status).toMatch(/^NoNewPrivs:\s+1$/m);
    expect(status).toMatch(/^Seccomp:\s+2$/m);
    expect(readFileSync(`/proc/${first.pid}/limits`, 'utf8')).toMatch(/^Max open files\s+100\s+200\s+files/m);
    const scratch = readFileSync(`/proc/${first.pid}/mountinfo`, 'utf8').split('\n').find((line) => line.split(' ')[4] === '/scratch');
    expect(scratch).toMatch(/ - tmpfs tmpfs \S*size=1024k/);
    expect(scratch).toMatch(/mode=1770/);

    // From inside.
    const rootfsWrite = execIn(first, ['busybox', 'touch', '/rootfs-probe']);
    expect(rootfsWrite.code).not.toBe(0);
    expect(rootfsWrite.output).toContain('Read-only file system');
    expect(execIn(first, ['sh', '-c', 'echo scratch > /scratch/f && cat /scratch/f'])).toEqual({ code: 0, output: 'scratch\n' });
    expect(execIn(first, ['sh', '-c', 'echo 10.9.9.9 extra >> /etc/hosts'])).toMatchObject({ code: 0 });
    const mount = execIn(first, ['busybox', 'mount', '-t', 'tmpfs', 'none', '/scratch']);
    expect(mount.code).not.toBe(0);
    expect(mount.output).toMatch(/permission denied|Operation not permitted/i);
    // Garbage as a module: a kernel that let the call through would answer "invalid module format".
    const module = execIn(first, ['sh', '-c', 'echo garbage > /scratch/evil.ko && busybox insmod /scratch/evil.ko']);
    expect(module.code).not.toBe(0);
    expect(module.output).toContain('Operation not permitted');
    const processes = execIn(first, ['busybox', 'ps', '-o', 'pid,comm']);
    expect(processes.code).toBe(0);
    const commands = processes.output.trim().split('\n').slice(1).map((line) => line.trim().split(/\s+/)[1]);
    // Only the container's own processes: tini, sh, its sleep and this ps; nothing of the host's.
    expect(commands).toContain('skiff-init');
    expect(commands).toContain('sh');
    expect(commands.length).toBeLessThan(8);
    for (const command of commands) expect(['skiff-init', 'sh', 'sleep', 'ps', 'busybox'], processes.output).toContain(command);
    expect(execIn(first, ['cat', '/proc/sys/net/ipv4/ip_unprivileged_port_start'])).toEqual({ code: 0, output: '1024\n' });
    expect(execIn(first, ['hostname']).output.trim()).toBe(`iso.${first.slot}.${first.id}`);

    const inspected = await skiff(home, ['service', 'inspect', 'iso']);
    expect(inspected.stdout).toContain('"readOnly": true');
    expect(inspected.stdout).toContain('"stopSignal": "SIGINT"');
    expect(inspected.stdout).toMatch(/"target": "\/data"/);
  });

  it('a named volume survives the task replacement; scaling down sends the stop signal; removal keeps the volume', async () => {
    expect(readIfExists(volumeFile('isodata', 'events'))).toBe(`start iso.${first.slot}.${first.id}\n`);
    process.kill(first.pid, 'SIGKILL');
    const second = await runningTask('iso', 'a replacement iso task', first.id);
    await waitFor('the replacement to log its start in the volume', 30_000, async () => (readIfExists(volumeFile('isodata', 'events')).split('\n').length === 3 ? true : undefined));
    expect(readIfExists(volumeFile('isodata', 'events'))).toBe(`start iso.${first.slot}.${first.id}\nstart iso.${second.slot}.${second.id}\n`);

    // skiff volume: listed on its node with the tasks that mount it (the running one and the
    // killed one, whose container is still there, as Docker counts a stopped container); rm is
    // refused while they do.
    const listed = JSON.parse((await skiff(home, ['volume', 'ls', '--format', 'json'])).stdout) as Array<{ node: string; name: string; tasks: number }>;
    expect(listed.filter((row) => row.name === 'isodata')).toEqual([expect.objectContaining({ node: 'h2', name: 'isodata', tasks: 2 })]);
    const refused = await skiff(home, ['volume', 'rm', 'isodata']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('h2: cannot remove volume "isodata": 2 task(s) on this node use it');
    expect(readIfExists(volumeFile('isodata', 'events'))).toContain(`start iso.${second.slot}.${second.id}`);

    const started = Date.now();
    expect((await skiff(home, ['service', 'scale', 'iso=0'])).code).toBe(0);
    // SIGKILL would come only after the 30 s grace period, and leave no line.
    await waitFor('the task to record SIGINT in its volume', 20_000, async () => (readIfExists(volumeFile('isodata', 'events')).endsWith('stopped by INT\n') ? true : undefined));
    expect(Date.now() - started).toBeLessThan(20_000);
    expect((await skiff(home, ['service', 'rm', 'iso'])).code).toBe(0);
    await waitFor('the iso containers to be removed', 30_000, async () => (existsSync(join(h2().dataDir, 'runtime', 'containers', second.containerId)) ? undefined : true));
    expect(readIfExists(volumeFile('isodata', 'events'))).toContain('stopped by INT');
    // With no task left on it, the volume goes on request, data and all.
    await waitFor('isodata unused', 30_000, async () => ((JSON.parse((await skiff(home, ['volume', 'ls', '--node', 'h2', '--format', 'json'])).stdout) as Array<{ name: string; tasks: number }>).find((row) => row.name === 'isodata')?.tasks === 0 ? true : undefined));
    const removed = await skiff(home, ['volume', 'rm', 'isodata']);
    expect(removed.stderr).toBe('');
    expect(removed.stdout).toMatch(/^h2\s+isodata$/m);
    expect(existsSync(volumeFile('isodata', 'events'))).toBe(false);
    expect((await skiff(home, ['volume', 'ls', '--format', 'json'])).stdout).not.toContain('isodata');
    const again = await skiff(home, ['volume', 'rm', 'isodata']);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toContain('isodata: no such volume on any node asked');
  });

  it('a memory hog over its limit is OOMKilled: task failed, error OOMKilled', async () => {
    await createService(['--name', 'hog', ...PIN, '--detach', '--limit-memory', '16m', '--restart-condition', 'none', '--entrypoint', 'sh', 'demo/web:v1', '-c', 'exec tail /dev/zero']);
    const failed = await waitFor('the hog to fail', 60_000, async () => (await ps('hog')).find((row) => row.state === 'failed'));
    expect(failed).toMatchObject({ error: 'OOMKilled', exitCode: 137 });
    expect((await skiff(home, ['service', 'ps', 'hog'])).stdout).toMatch(/failed.*OOMKilled/);
    expect((await skiff(home, ['service', 'rm', 'hog'])).code).toBe(0);
  });

  it('a ulimit above the node hard limit or a missing bind source: the task is rejected, naming the cause, and create says so', async () => {
    const pid = (await labStatus(lab)).hosts.find((host) => host.name === 'h2')?.pid ?? 0;
    const hard = Number(/^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'))?.[1]);
    expect(Number.isInteger(hard), 'skiffd on h2 has a finite open-files hard limit').toBe(true);
    // Without --detach, create waits for convergence and reports the rejection.
    const greedy = await skiff(home, ['service', 'create', '--name', 'greedy', ...PIN, '--restart-condition', 'none', '--ulimit', `nofile=1024:${hard + 1}`, 'demo/web:v1']);
    expect(greedy.code).not.toBe(0);
    expect(greedy.stderr).toContain(`ulimits: nofile hard limit ${hard + 1} is above this node's hard limit ${hard} (the agent cannot raise it)`);
    const [rejected] = await ps('greedy');
    expect(rejected).toMatchObject({ state: 'rejected', error: `cannot run container "${rejected?.id}": ulimits: nofile hard limit ${hard + 1} is above this node's hard limit ${hard} (the agent cannot raise it)` });
    await createService(['--name', 'nobind', ...PIN, '--detach', '--restart-condition', 'none', '--mount', 'type=bind,src=/nonexistent/skiff-e2e,dst=/x', 'demo/web:v1']);
    const noBind = await waitFor('the nobind task to be rejected', 60_000, async () => (await ps('nobind')).find((row) => row.state === 'rejected'));
    expect(noBind.error).toBe(`cannot start container ${noBind.containerId || noBind.id}: mounts[0]: bind source /nonexistent/skiff-e2e does not exist on this node`);
    for (const service of ['greedy', 'nobind']) expect((await skiff(home, ['service', 'rm', service])).code).toBe(0);
  });

  it('a fork bomb is held at the pids limit and the task keeps running', async () => {
    const bomb = 'bomb() { bomb | bomb & }; bomb; exec sleep 1000';
    // sleep as PID 1 ignores SIGTERM: the 1 s grace period ends it with SIGKILL (10 s by default).
    await createService(['--name', 'bomb', ...PIN, '--limit-pids', '40', '--limit-cpu', '0.2', '--stop-grace-period', '1s', '--entrypoint', 'sh', 'demo/web:v1', '-c', bomb]);
    const task = await runningTask('bomb');
    const cgroup = join('/sys/fs/cgroup/pids', h2().cgroupParent, task.containerId);
    expect(readFileSync(join(cgroup, 'pids.max'), 'utf8').trim()).toBe('40');
    const refused = await waitFor('forks refused at the limit', 30_000, async () => {
      const events = /max (\d+)/.exec(readFileSync(join(cgroup, 'pids.events'), 'utf8'));
      return Number(events?.[1] ?? 0) > 0 ? Number(events?.[1]) : undefined;
    });
    expect(refused).toBeGreaterThan(0);
    for (let sample = 0; sample < 5; sample += 1) expect(Number(readFileSync(join(cgroup, 'pids.current'), 'utf8'))).toBeLessThanOrEqual(40);
    expect(running(await ps('bomb')).map((row) => row.id)).toEqual([task.id]);
    expect(existsSync(`/proc/${task.pid}`)).toBe(true);
    const removing = Date.now();
    expect((await skiff(home, ['service', 'rm', 'bomb'])).code).toBe(0);
    await waitFor('the bomb container and its cgroup to go', 60_000, async () => (existsSync(cgroup) ? undefined : true));
    expect(Date.now() - removing).toBeLessThan(8_000);
  });

  it('a skiffd restart keeps its containers; an exit while skiffd is down is reported with its exit code once it is back', async () => {
    const script = 'while [ ! -f /data/exit-now ]; do sleep 0.2; done; exit 42';
    await createService(['--name', 'keeper', ...PIN, '--mount', 'type=volume,source=keeperdata,target=/data', '--entrypoint', 'sh', 'demo/web:v1', '-c', script]);
    const before = await runningTask('keeper');

    await stopSkiffd('h2');
    expect(existsSync(`/proc/${before.pid}`)).toBe(true); // skiffd is gone, the container is not
    await labStart(lab, 'h2');
    const after = await waitFor('keeper running again after the restart', 30_000, async () => running(await ps('keeper')).find((row) => row.id === before.id));
    expect(after).toMatchObject({ containerId: before.containerId, pid: before.pid });
    expect(running(await ps('keeper'))).toHaveLength(1);

    await stopSkiffd('h2');
    writeFileSync(volumeFile('keeperdata', 'exit-now'), '');
    const exitFile = join(h2().dataDir, 'runtime', 'exits', before.containerId);
    await waitFor('the container to exit while skiffd is down', 10_000, async () => (existsSync(exitFile) ? true : undefined), 50);
    rmSync(volumeFile('keeperdata', 'exit-now')); // the replacement must keep running
    expect(readFileSync(exitFile, 'utf8').trim()).toBe('42');
    await labStart(lab, 'h2');
    const failed = await waitFor('the exit to be reported', 30_000, async () => (await ps('keeper')).find((row) => row.id === before.id && row.state === 'failed'));
    expect(failed).toMatchObject({ exitCode: 42, error: 'task: non-zero exit (42)' });
    const replacement = await runningTask('keeper', 'a replacement keeper task', before.id);
    expect(replacement.pid).not.toBe(before.pid);
    const containers = JSON.parse(execFileSync('runc', ['--root', h2().runcRoot, 'list', '--format', 'json'], { encoding: 'utf8' }) || '[]') as Array<{ id: string; status: string }> | null;
    expect((containers ?? []).filter((container) => container.status === 'running').map((container) => container.id)).toEqual([replacement.containerId]);
    expect((await skiff(home, ['service', 'rm', 'keeper'])).code).toBe(0);
  });

  it('lab down leaves nothing behind', async () => {
    await labDown(lab);
    expect(await leftovers(lab)).toEqual([]);
  });
});
