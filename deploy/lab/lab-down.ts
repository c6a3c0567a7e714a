// `skiff lab down` and the "nothing left behind" check. Both find a lab's objects by NAME (see
// naming.ts), never only through lab.json, so that an aborted `up` or a lost state file still
// cleans up completely. Order: processes, runc state, mounts, namespaces, links, cgroups, files.
import { readFile, readdir, readlink, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cleanupRuntimeState } from '../../agent/runtime/index.js';
import { contextCertsDir, loadContext, removeContext } from '../../cli/context.js';
import { registryPaths, registryPidAlive, stopRegistryPid } from '../registry/registry.js';
import { MAX_HOSTS, NETNS_DIR, checkLabName, hostIndex, hostLayout, labPaths } from './naming.js';
import { deleteLink, deleteNetns, linkNames, netnsNames } from './network.js';
import { readLabState } from './state.js';
import {
  MAX_KILL_ROUNDS,
  POLL_INTERVAL_MS,
  cgroupHierarchies,
  isAlive,
  killCgroupTree,
  listPids,
  mountsUnder,
  pidsInCgroupTree,
  processArgv,
  removeCgroupTree,
  run,
  signalProcess,
  waitFor,
} from './system.js';

/** How long `down` lets the kernel finish tearing objects down before it reports leftovers. */
export const LEFTOVERS_SETTLE_TIMEOUT_MS = 5_000;

/**
 * Removes every namespace, link, mount, cgroup, process and file of lab `name`, and its CLI
 * context. Keeps going past a failed step, then fails listing every failure and every leftover.
 */
export async function labDown(name: string, log: (line: string) => void = () => undefined): Promise<void> {
  checkLabName(name);
  const paths = labPaths(name);
  const errors: string[] = [];
  const step = async (what: string, action: () => Promise<void>): Promise<void> => {
    try {
      await action();
    } catch (error) {
      errors.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  const state = await readLabState(name).catch(() => undefined);

  await step('stop registry', async () => {
    const pids = [state?.registry.pid ?? 0, await registryPidFromFile(paths.registryDir)];
    for (const pid of pids) if (pid > 0 && registryPidAlive(pid)) await stopRegistryPid(pid);
  });
  await step('kill processes', () => killLabProcesses(name));
  await step('clean up runtime state', async () => {
    // The runtime's own teardown (runc delete --force, conmons, overlay mounts, cgroups) per host.
    for (const host of await hostsOnDisk(name)) {
      await cleanupRuntimeState({ stateDir: join(host.dataDir, 'runtime'), runcRoot: host.runcRoot, cgroupParent: host.cgroupParent });
    }
  });
  await step('delete runc containers', async () => {
    for (const host of await hostsOnDisk(name)) await deleteRuncContainers(host.runcRoot);
  });
  await step('unmount', async () => {
    for (const point of await mountsUnder([paths.stateDir, paths.runDir])) {
      const result = await run('umount', [point]);
      if (result.code !== 0) await run('umount', ['-l', point]);
    }
  });
  // Veths first (each takes its peer along), then the namespaces, then the bridge.
  await step('delete veths', async () => {
    for (const link of (await linkNames()).filter((entry) => paths.vethPattern.test(entry))) await deleteLink(link);
  });
  await step('delete namespaces', async () => {
    for (const netns of (await netnsNames()).filter((entry) => entry.startsWith(paths.netnsPrefix))) await deleteNetns(netns);
  });
  await step('delete bridge', () => deleteLink(paths.bridge));
  await step('remove cgroups', () => removeCgroupTree(paths.cgroupRoot));
  await step('remove files', async () => {
    await rm(paths.stateDir, { recursive: true, force: true });
    await rm(paths.runDir, { recursive: true, force: true });
  });
  await step('remove CLI context', async () => {
    if (await contextBelongsToLab(name)) await removeContext(name);
    await rm(contextCertsDir(name), { recursive: true, force: true });
  });
  // The kernel tears some objects down asynchronously (a netns's links go with its last user).
  let left: string[] = [];
  await waitFor(async () => (left = await leftovers(name)).length === 0, LEFTOVERS_SETTLE_TIMEOUT_MS);
  if (errors.length > 0 || left.length > 0) {
    throw new Error(`cannot bring down lab ${name} completely:\n${[...errors, ...left.map((item) => `left behind: ${item}`)].join('\n')}`);
  }
  log(`lab ${name}: down`);
}

/**
 * Every namespace, link, mount, cgroup, process and file of lab `name` that still exists, one line
 * each ("netns skiff-x-h1", "process 123 skiffd …"). Empty means the lab left nothing behind.
 */
export async function leftovers(name: string): Promise<string[]> {
  checkLabName(name);
  const paths = labPaths(name);
  const found: string[] = [];
  for (const netns of await netnsNames()) if (netns.startsWith(paths.netnsPrefix)) found.push(`netns ${netns}`);
  for (const link of await linkNames()) if (link === paths.bridge || paths.vethPattern.test(link)) found.push(`link ${link}`);
  const netnsMounts = (await mountsUnder(['/run/netns', NETNS_DIR])).filter((point) => point.split('/').pop()?.startsWith(paths.netnsPrefix));
  for (const point of [...(await mountsUnder([paths.stateDir, paths.runDir])), ...netnsMounts]) found.push(`mount ${point}`);
  for (const hierarchy of await cgroupHierarchies()) {
    const dir = join(hierarchy, paths.cgroupRoot);
    if (await exists(dir)) found.push(`cgroup ${dir}`);
  }
  for (const pid of await labProcesses(name)) found.push(`process ${pid} ${((await processArgv(pid)) ?? []).join(' ')}`);
  for (const path of [paths.stateDir, paths.runDir]) if (await exists(path)) found.push(`file ${path}`);
  if (await exists(contextCertsDir(name))) found.push(`file ${contextCertsDir(name)}`);
  if (await contextBelongsToLab(name)) found.push(`context ${name}`);
  return found;
}

/** Pids of lab `name`: in its cgroup tree, in one of its netns, or naming its paths on the command line. */
async function labProcesses(name: string): Promise<number[]> {
  const paths = labPaths(name);
  const found = new Set(await pidsInCgroupTree(paths.cgroupRoot));
  const netnsInodes = new Set<string>();
  for (const netns of await netnsNames()) {
    if (!netns.startsWith(paths.netnsPrefix)) continue;
    const info = await stat(join(NETNS_DIR, netns)).catch(() => undefined);
    if (info !== undefined) netnsInodes.add(`net:[${info.ino}]`);
  }
  const markers = [`${paths.stateDir}/`, `${paths.runDir}/`, `${NETNS_DIR}/${paths.netnsPrefix}`, `/run/netns/${paths.netnsPrefix}`];
  for (const pid of await listPids()) {
    if (pid === process.pid || pid === process.ppid || found.has(pid)) continue;
    const netns = await readlink(`/proc/${pid}/ns/net`).catch(() => '');
    const argv = (await processArgv(pid)) ?? [];
    if (netnsInodes.has(netns) || argv.some((arg) => markers.some((marker) => arg.includes(marker)))) found.add(pid);
  }
  const alive: number[] = [];
  for (const pid of found) if (pid !== process.pid && (await isAlive(pid))) alive.push(pid);
  return alive.sort((a, b) => a - b);
}

/** SIGKILLs every process of the lab, round after round, until none is left. */
async function killLabProcesses(name: string): Promise<void> {
  await killCgroupTree(labPaths(name).cgroupRoot);
  for (let round = 0; round < MAX_KILL_ROUNDS; round += 1) {
    const pids = await labProcesses(name);
    if (pids.length === 0) return;
    for (const pid of pids) signalProcess(pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
  throw new Error(`processes of lab ${name} still alive after ${MAX_KILL_ROUNDS} rounds: ${(await labProcesses(name)).join(', ')}`);
}

/** Every host of the lab that has a directory on disk, with its layout (lab.json not needed). */
async function hostsOnDisk(name: string): Promise<Array<{ dataDir: string; runcRoot: string; cgroupParent: string }>> {
  const paths = labPaths(name);
  const entries = new Set([...(await readdir(paths.stateDir).catch(() => [])), ...(await readdir(paths.runDir).catch(() => []))]);
  const hosts: Array<{ dataDir: string; runcRoot: string; cgroupParent: string }> = [];
  for (const entry of entries) {
    const index = hostIndex(entry);
    // The subnet index does not matter for paths; 0 is always valid.
    if (index !== undefined && index <= MAX_HOSTS) hosts.push(hostLayout(name, index, 0));
  }
  return hosts;
}

async function deleteRuncContainers(runcRoot: string): Promise<void> {
  if (!(await exists(runcRoot))) return;
  const listed = await run('runc', ['--root', runcRoot, 'list', '-q']);
  if (listed.code !== 0) return;
  for (const id of listed.stdout.split('\n').filter((line) => line.trim() !== '')) {
    const result = await run('runc', ['--root', runcRoot, 'delete', '--force', id.trim()]);
    if (result.code !== 0) throw new Error(`runc --root ${runcRoot} delete --force ${id}: ${result.stderr.trim()}`);
  }
}

async function registryPidFromFile(registryDir: string): Promise<number> {
  const text = await readFile(registryPaths(registryDir).pidFile, 'utf8').catch(() => '');
  const pid = Number.parseInt(text, 10);
  return Number.isInteger(pid) ? pid : 0;
}

/**
 * True when the CLI has a context named like the lab that uses the lab's admin credential and
 * lab addresses: a real cluster's context that happens to share the name is never removed.
 */
async function contextBelongsToLab(name: string): Promise<boolean> {
  const context = await loadContext(name).catch(() => undefined);
  return (
    context !== undefined &&
    context.certPath.startsWith(`${contextCertsDir(name)}/`) &&
    context.managers.every((manager) => manager.startsWith('198.18.'))
  );
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}
