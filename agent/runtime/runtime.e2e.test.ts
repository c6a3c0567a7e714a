import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostVethName } from '../network/bridge-network.js';
import { cgroupMounts } from './cgroups.js';
import { runCommand } from './command.js';
import { listPids, pathExists, processArgv, readTextIfExists, waitFor } from './fs-util.js';
import { cleanupRuntimeState, createRuntime, killAllInCgroupParent, RuntimeError, type ContainerInfo, type ContainerRequest, type Runtime, type RuntimeLogger } from './index.js';
import { RuncClient } from './runc.js';
import { mountsUnder } from './rootfs.js';
import { makeScratch, type Scratch } from './testing/busybox-layer.js';

const CONDITION_TIMEOUT_MS = 10_000;
const POLL_MS = 10;
const LATENCY_SAMPLES = 5;

let scratch: Scratch;
const runtimes: Runtime[] = [];
const exits: Array<{ containerId: string; exitCode: number; oomKilled: boolean }> = [];

/** Start-phase timings logged by the runtime ('created -> running'). */
const startPhases: Array<Record<string, unknown>> = [];
const capturingLogger: RuntimeLogger = {
  info: (message, fields) => {
    if (message === 'created -> running' && fields !== undefined) startPhases.push(fields);
  },
  warn: (message, fields) => console.warn(message, fields),
};

async function newRuntime(): Promise<Runtime> {
  const runtime = await createRuntime({
    stateDir: scratch.stateDir,
    runcRoot: scratch.runcRoot,
    cgroupParent: scratch.cgroupParent,
    bridgeName: scratch.bridgeName,
    bridgeSubnet: scratch.bridgeSubnet,
    secretsDir: path.join(scratch.baseDir, 'secrets'),
  }, { logger: capturingLogger });
  runtimes.push(runtime);
  return runtime;
}

function request(containerId: string, overrides: Partial<ContainerRequest> = {}): ContainerRequest {
  return {
    containerId,
    hostname: containerId,
    layerDirs: [scratch.layerDir],
    argv: ['sleep', '1000'],
    env: [],
    user: '',
    workingDir: '',
    memoryLimitBytes: 0,
    nanoCpus: 0,
    pidsLimit: 0,
    labels: { 'skiff.task.id': `task-${containerId}` },
    files: [],
    ...overrides,
  };
}

async function nsLink(pid: number | 'self', kind: string): Promise<string> {
  return fs.readlink(`/proc/${pid}/ns/${kind}`);
}

function exitOf(containerId: string): { exitCode: number; oomKilled: boolean } | undefined {
  return exits.find((exit) => exit.containerId === containerId);
}

async function expectGone(containerId: string, address: string | undefined): Promise<void> {
  const bundle = path.join(scratch.stateDir, 'containers', containerId);
  expect(await mountsUnder(bundle)).toEqual([]);
  expect(await pathExists(bundle)).toBe(false);
  expect(await new RuncClient(scratch.runcRoot).state(containerId)).toBeUndefined();
  for (const mount of await cgroupMounts()) expect(await pathExists(path.join(mount, scratch.cgroupParent, containerId))).toBe(false);
  if (address !== undefined) expect(await pathExists(path.join(scratch.stateDir, 'network', 'ipam', scratch.bridgeName, address))).toBe(false);
  expect((await runCommand('ip', ['link', 'show', 'dev', hostVethName(containerId)])).exitCode).not.toBe(0);
}

async function networkDiagnostics(pid: number): Promise<string> {
  const inside = await runCommand('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'addr']);
  const routes = await runCommand('nsenter', [`--net=/proc/${pid}/ns/net`, 'ip', 'route']);
  const bridge = await runCommand('ip', ['addr', 'show', 'dev', scratch.bridgeName]);
  const ports = await runCommand('ip', ['link', 'show', 'master', scratch.bridgeName]);
  const listening = (await readTextIfExists(`/proc/${pid}/net/tcp`)) ?? '';
  const verbose = await runCommand('/bin/busybox', ['wget', '-O', '-', `http://${inside.stdout.match(/inet (198[\d.]+)/)?.[1]}:8080/index.html`], { timeoutMs: 2_000 });
  const log = (await readTextIfExists(path.join(scratch.stateDir, 'logs', 'web.log'))) ?? '';
  return [inside.stdout, routes.stdout, bridge.stdout, ports.stdout, listening, verbose.stderr, log].join('\n');
}

/** Processes (conmon, runc, container payloads) whose command line names this run's directories. */
async function leakedProcesses(): Promise<string[]> {
  const leaked: string[] = [];
  for (const pid of await listPids()) {
    const argv = await processArgv(pid);
    if (argv?.some((arg) => arg.includes(scratch.baseDir))) leaked.push(`${pid}: ${argv.join(' ')}`);
  }
  return leaked;
}

beforeAll(async () => {
  scratch = await makeScratch('rt-e2e');
});

afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  if (scratch === undefined) return;
  await cleanupRuntimeState({ stateDir: scratch.stateDir, runcRoot: scratch.runcRoot, cgroupParent: scratch.cgroupParent, secretsDir: path.join(scratch.baseDir, 'secrets') }).catch((error: unknown) => console.error(error));
  await runCommand('ip', ['link', 'del', 'dev', scratch.bridgeName]);
  if ((await mountsUnder(scratch.baseDir)).length === 0) await fs.rm(scratch.baseDir, { recursive: true, force: true });
});

describe('runc runtime', () => {
  let first: Runtime;
  let web: ContainerInfo;

  it('runs a container in its own namespaces, cgroups and bridge address', async () => {
    first = await newRuntime();
    first.watchExits((containerId, exitCode, oomKilled) => exits.push({ containerId, exitCode, oomKilled }));
    web = await first.run(request('web', {
      argv: ['sh', '-c', 'echo hi; httpd -f -v -p 8080 -h /www & exec sleep 1000'],
      memoryLimitBytes: 64 * 1024 * 1024,
      nanoCpus: 500_000_000,
    }));
    expect(web.status).toBe('running');
    expect(web.pid).toBeGreaterThan(0);
    expect((await first.inspect('web'))?.status).toBe('running');
    for (const kind of ['pid', 'net', 'mnt', 'uts', 'ipc']) expect(await nsLink(web.pid, kind)).not.toBe(await nsLink('self', kind));

    const cgroupLines = ((await readTextIfExists(`/proc/${web.pid}/cgroup`)) ?? '').split('\n');
    for (const controller of ['memory', 'cpu', 'pids']) {
      const line = cgroupLines.find((candidate) => candidate.split(':')[1]?.split(',').includes(controller));
      expect(line?.split(':')[2]).toBe(`${scratch.cgroupParent}/web`);
    }
    const cgroupFile = (controller: string, file: string): Promise<string | undefined> =>
      readTextIfExists(path.join('/sys/fs/cgroup', controller, scratch.cgroupParent, 'web', file));
    expect((await cgroupFile('memory', 'memory.limit_in_bytes'))?.trim()).toBe(String(64 * 1024 * 1024));
    expect((await cgroupFile('cpu', 'cpu.cfs_quota_us'))?.trim()).toBe('50000');
    expect((await cgroupFile('pids', 'pids.max'))?.trim()).toBe('4096');
    const limits = (await readTextIfExists(`/proc/${web.pid}/limits`)) ?? '';
    const hardNofile = Number(/Max open files\s+\d+\s+(\d+)/.exec(limits)?.[1]);
    const ownHardNofile = Number(/Max open files\s+\d+\s+(\d+)/.exec((await readTextIfExists('/proc/self/limits')) ?? '')?.[1]);
    expect(hardNofile).toBe(Math.min(1_048_576, ownHardNofile));

    expect(web.addresses).toHaveLength(1);
    const address = web.addresses[0] ?? '';
    expect(address.startsWith(scratch.bridgePrefix)).toBe(true);
    expect(await readTextIfExists(`/proc/${web.pid}/root/etc/hosts`)).toContain(`${address}\tweb`);
    expect((await readTextIfExists(`/proc/${web.pid}/root/etc/hostname`))?.trim()).toBe('web');
    let answer = '';
    const answered = await waitFor(async () => {
      const result = await runCommand('/bin/busybox', ['wget', '-q', '-O', '-', `http://${address}:8080/index.html`], { timeoutMs: 2_000 });
      answer = `${result.stdout}${result.stderr}`;
      return result.stdout.includes('hello from skiff');
    }, CONDITION_TIMEOUT_MS, 50);
    expect(answered, `httpd answer: ${answer}\n${await networkDiagnostics(web.pid)}`).toBe(true);
    const conmonPid = Number(await readTextIfExists(path.join(scratch.stateDir, 'containers', 'web', 'conmon.pid')));
    const conmonStat = ((await readTextIfExists(`/proc/${conmonPid}/stat`)) ?? '').replace(/^.*\) /, '').split(' ');
    const ownStat = ((await readTextIfExists('/proc/self/stat')) ?? '').replace(/^.*\) /, '').split(' ');
    expect(conmonStat[1], 'conmon is not our child').not.toBe(String(process.pid));
    expect(conmonStat[3], 'conmon has its own session').not.toBe(ownStat[3]);
    const logged = await waitFor(async () => ((await readTextIfExists(web.logPath)) ?? '').includes('stdout F hi'), CONDITION_TIMEOUT_MS, POLL_MS);
    expect(logged, `log: ${await readTextIfExists(web.logPath)}`).toBe(true);
  });

  it('resolves the user from the image and escalates stop from TERM to KILL', async () => {
    const info = await first.run(request('app', { user: 'app', workingDir: '/tmp' }));
    const status = (await readTextIfExists(`/proc/${info.pid}/status`)) ?? '';
    expect(/^Uid:\s+1000\s/m.test(status)).toBe(true);
    expect(/^Gid:\s+1000\s/m.test(status)).toBe(true);
    expect(/^Groups:\s+2000\s*$/m.test(status)).toBe(true);
    expect(/^NoNewPrivs:\s+1$/m.test(status)).toBe(true);
    const startedAt = Date.now();
    await first.stop('app', 300); // sleep as pid 1 ignores SIGTERM
    expect(Date.now() - startedAt).toBeGreaterThanOrEqual(300);
    const stopped = await first.inspect('app');
    expect(stopped?.status).toBe('stopped');
    expect(stopped?.exitCode).toBe(137);
    await first.stop('app', 300); // no-op once stopped
    expect(await waitFor(() => exitOf('app')?.exitCode === 137, CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    await first.remove('app');
    await first.remove('app');
    await expectGone('app', info.addresses[0]);
  });

  it('execs a process in a running container with its output, stdin, user and exit code', async () => {
    const readAll = async (stream: NodeJS.ReadableStream): Promise<string> => {
      let text = '';
      for await (const chunk of stream) text += String(chunk);
      return text;
    };
    const shell = await first.exec('web', { argv: ['sh', '-c', 'echo out; echo err >&2; hostname; exit 3'], env: [], user: '', workingDir: '', stdin: false });
    const [out, err, code] = await Promise.all([readAll(shell.stdout), readAll(shell.stderr), shell.exited]);
    expect(out).toBe('out\nweb\n');
    expect(err).toBe('err\n');
    expect(code).toBe(3);

    const asApp = await first.exec('web', { argv: ['sh', '-c', 'id -u; pwd; echo $EXTRA; cat'], env: ['EXTRA=yes'], user: 'app', workingDir: '/tmp', stdin: true });
    asApp.stdin?.end('from stdin\n');
    const [appOut, appCode] = await Promise.all([readAll(asApp.stdout), asApp.exited]);
    expect(appOut).toBe('1000\n/tmp\nyes\nfrom stdin\n');
    expect(appCode).toBe(0);

    const sleeper = await first.exec('web', { argv: ['sleep', '1000'], env: [], user: '', workingDir: '', stdin: false });
    sleeper.kill();
    expect(await sleeper.exited).toBe(137);

    const missing = await first.exec('web', { argv: ['no-such-binary'], env: [], user: '', workingDir: '', stdin: false });
    const [, missingErr, missingCode] = await Promise.all([readAll(missing.stdout), readAll(missing.stderr), missing.exited]);
    expect(missingCode).not.toBe(0);
    expect(missingErr).toContain('no-such-binary');
    await expect(first.exec('nope', { argv: ['true'], env: [], user: '', workingDir: '', stdin: false })).rejects.toMatchObject({ code: 'not_found' });
  });

  it('reports an OOM kill', async () => {
    const info = await first.run(request('hog', {
      argv: ['sh', '-c', 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo survived'],
      memoryLimitBytes: 16 * 1024 * 1024,
    }));
    expect(await waitFor(() => exitOf('hog') !== undefined, CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    expect(exitOf('hog')?.oomKilled).toBe(true);
    expect(await first.inspect('hog')).toMatchObject({ status: 'stopped', oomKilled: true });
    await first.remove('hog');
    await expectGone('hog', info.addresses[0]);
  });

  it('gives a stopped container\'s network back at once and keeps its log until removal', async () => {
    const info = await first.run(request('brief', { argv: ['sh', '-c', 'echo goodbye; exec sleep 1000'] }));
    const address = info.addresses[0] ?? '';
    const claim = path.join(scratch.stateDir, 'network', 'ipam', scratch.bridgeName, address);
    const netns = path.join(scratch.stateDir, 'containers', 'brief', 'netns');
    expect(await pathExists(claim)).toBe(true);
    expect(await mountsUnder(netns)).toEqual([netns]);
    expect((await runCommand('ip', ['link', 'show', 'dev', hostVethName('brief')])).exitCode).toBe(0);

    process.kill(info.pid, 'SIGKILL');
    expect(await waitFor(() => exitOf('brief') !== undefined, CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    const released = async (): Promise<boolean> =>
      !(await pathExists(claim)) && (await mountsUnder(netns)).length === 0 && (await runCommand('ip', ['link', 'show', 'dev', hostVethName('brief')])).exitCode !== 0;
    expect(await waitFor(released, CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    expect(await first.inspect('brief')).toMatchObject({ status: 'stopped', exitCode: 137, addresses: [] });
    expect(await readTextIfExists(path.join(scratch.stateDir, 'logs', 'brief.log'))).toContain('goodbye');

    // The address is free for the next container, and remove() after the release still cleans up.
    await first.remove('brief');
    await expectGone('brief', address);
  });

  it('rejects bad requests and cleans up after a failed start', async () => {
    await expect(first.run(request('web'))).rejects.toMatchObject({ code: 'already_exists' });
    await expect(first.run(request('empty', { argv: [] }))).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(first.run(request('Bad/Id'))).rejects.toMatchObject({ code: 'invalid_request' });
    await expect(first.stop('ghost', 100)).rejects.toMatchObject({ code: 'not_found' });
    const failure = await first.run(request('broken', { argv: ['/nonexistent'] })).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(RuntimeError);
    expect((failure as RuntimeError).code).toBe('start_failed');
    expect((failure as RuntimeError).message).toMatch(/^cannot start container broken: .*nonexistent/);
    await expectGone('broken', undefined);
    const nobody = await first.run(request('nobody', { user: 'nosuchuser' })).catch((error: unknown) => error);
    expect((nobody as RuntimeError).code).toBe('start_failed');
    await expectGone('nobody', undefined);
    expect(exitOf('broken')).toBeUndefined();
  });

  it('adopts running containers from a new instance and reports exits it did not see', async () => {
    const second = await newRuntime();
    const adopted = (await second.list()).find((info) => info.containerId === 'web');
    expect(adopted).toMatchObject({ status: 'running', pid: web.pid, labels: { 'skiff.task.id': 'task-web' }, addresses: web.addresses });

    process.kill(web.pid, 'SIGKILL');
    expect(await waitFor(() => exitOf('web') !== undefined, CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);
    expect(exitOf('web')).toEqual({ containerId: 'web', exitCode: 137, oomKilled: false });

    const third = await newRuntime();
    const seen: Array<[string, number]> = [];
    third.watchExits((containerId, exitCode) => seen.push([containerId, exitCode]));
    expect((await third.list()).find((info) => info.containerId === 'web')).toMatchObject({ status: 'stopped', pid: 0, exitCode: 137 });
    expect(await waitFor(() => seen.some(([id, code]) => id === 'web' && code === 137), CONDITION_TIMEOUT_MS, POLL_MS)).toBe(true);

    await third.remove('web');
    await expectGone('web', web.addresses[0]);
    expect((await first.list()).map((info) => info.containerId)).not.toContain('web');
  });

  // Speed is measured by bench:service-start, not asserted here; this logs each start's phases.
  it('starts containers one after another, each logging its start phases', async () => {
    const latencies: number[] = [];
    const phasesBefore = startPhases.length;
    for (let index = 0; index < LATENCY_SAMPLES; index += 1) {
      const startedAt = performance.now();
      const info = await first.run(request(`fast-${index}`));
      latencies.push(performance.now() - startedAt);
      expect(info.status).toBe('running');
    }
    latencies.sort((left, right) => left - right);
    console.log(`run() latency ms (call -> running, ${LATENCY_SAMPLES} samples): ${latencies.map((value) => value.toFixed(1)).join(' ')}`);
    const phases = startPhases.slice(phasesBefore).map((fields) => fields['phaseMs'] as Record<string, number>);
    console.log(`phases ms: ${phases.map((phase) => JSON.stringify(phase)).join(' ')}`);
    expect(phases).toHaveLength(LATENCY_SAMPLES);
    for (const phase of phases) expect(Object.keys(phase).sort()).toEqual(['bundle', 'create', 'network', 'start']);
    for (let index = 0; index < LATENCY_SAMPLES; index += 1) expect((await first.inspect(`fast-${index}`))?.status).toBe('running');
  });

  it('kills a whole cgroup parent and cleans the host state', async () => {
    const signalled = await killAllInCgroupParent(scratch.cgroupParent);
    expect(signalled).toBeGreaterThanOrEqual(LATENCY_SAMPLES);
    const allExited = await waitFor(() => Array.from({ length: LATENCY_SAMPLES }, (_value, index) => exitOf(`fast-${index}`)).every((exit) => exit?.exitCode === 137), CONDITION_TIMEOUT_MS, POLL_MS);
    expect(allExited).toBe(true);
    await cleanupRuntimeState({ stateDir: scratch.stateDir, runcRoot: scratch.runcRoot, cgroupParent: scratch.cgroupParent });
    expect(await mountsUnder(scratch.stateDir)).toEqual([]);
    for (const mount of await cgroupMounts()) expect(await pathExists(path.join(mount, scratch.cgroupParent))).toBe(false);
    expect(await pathExists(scratch.runcRoot)).toBe(false);
    expect(await waitFor(async () => (await leakedProcesses()).length === 0, CONDITION_TIMEOUT_MS, POLL_MS), (await leakedProcesses()).join('\n')).toBe(true);
  });
});
