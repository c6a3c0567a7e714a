// One skiffd per lab host: its exact command line, a detached start inside the host's netns and
// daemon cgroup, readiness, graceful stop and crash. The pid we record is skiffd's own: the
// launcher shell execs nsenter, which execs bin/skiffd, which execs node.
import { spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LabHost, LabState } from './state.js';
import { killAllInCgroupParent } from '../../agent/runtime/index.js';
import { certificateRoleIn } from '../../pki/credentials-store.js';
import { isAlive, killCgroupTree, makeDaemonCgroup, pidsInCgroupTree, signalProcess, waitFor } from './system.js';

/** How long every skiffd of a lab may take to come up (managers accept TCP, none has died). */
export const DAEMON_READY_TIMEOUT_MS = 60_000;
/** How long a skiffd may take to exit after SIGTERM before `lab restart` fails. */
export const DAEMON_STOP_TIMEOUT_MS = 30_000;
/** Longest wait for one TCP connect during a readiness probe. */
export const TCP_PROBE_TIMEOUT_MS = 500;
/** How much of skiffd.log an error quotes. */
export const LOG_TAIL_BYTES = 3_000;
export const DAEMON_LOG_FILE = 'skiffd.log';
/** What skiffd logs once it serves (cli/skiffd.ts): a worker is ready when its log says so. */
export const DAEMON_READY_MARKER = 'skiffd ready';

/** The repository root (the directory whose package.json is named "skiff"). */
export function repositoryRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const manifest = join(dir, 'package.json');
    if (existsSync(manifest) && (JSON.parse(readFileSync(manifest, 'utf8')) as { name?: unknown }).name === 'skiff') return dir;
    const parent = dirname(dir);
    if (parent === dir) throw new Error('cannot find the skiff repository root above deploy/lab');
    dir = parent;
  }
}

/** Path of the skiffd to run: $SKIFF_SKIFFD, else <repo>/bin/skiffd (after a checked build). */
export function skiffdPath(): string {
  const override = process.env['SKIFF_SKIFFD'];
  if (override !== undefined && override !== '') return override;
  const root = repositoryRoot();
  const built = join(root, 'dist', 'cli', 'skiffd.js');
  if (!existsSync(built)) throw new Error(`cannot start skiffd: ${built} does not exist: run \`npm run build\``);
  return join(root, 'bin', 'skiffd');
}

/** skiffd's flags for `host` (without the binary). Restart reuses exactly these. */
export function skiffdArgs(state: LabState, host: LabHost): string[] {
  const firstManager = state.hosts.find((candidate) => candidate.role === 'manager');
  if (firstManager === undefined) throw new Error(`cannot start skiffd on ${host.name}: lab ${state.name} has no manager`);
  const listen = `${host.addr}:4242`;
  return [
    '--data-dir', host.dataDir,
    '--hostname', host.name,
    '--listen-addr', listen,
    '--advertise-addr', listen,
    ...(host.role === 'manager' ? ['--manager'] : []),
    '--join', `${firstManager.addr}:4242`,
    '--control-socket', host.controlSocket,
    '--runc-root', host.runcRoot,
    '--cgroup-parent', host.cgroupParent,
    '--bridge-name', host.bridgeName,
    '--bridge-subnet', host.bridgeSubnet,
    '--default-registry', state.registry.addr,
    '--insecure-registry', state.registry.addr,
  ];
}

// Joins every cgroup.procs file given, then execs the rest of its arguments: the daemon and all
// its children (conmon included) are in the host's daemon cgroup from their first instruction.
const LAUNCHER_SCRIPT = 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done; exec "$@"';

/** A skiffd just launched: its pid and where its output starts in skiffd.log. */
export interface LaunchedDaemon {
  host: LabHost;
  pid: number;
  logOffset: number;
}

/**
 * Starts `host`'s skiffd detached (own session, stdout+stderr appended to <dataDir>/skiffd.log),
 * in its netns via `nsenter --net` (never `ip netns exec`: it remounts /sys and runc then finds no
 * cgroup mount), inside its daemon cgroup. Readiness is `waitDaemonsReady`.
 */
export async function startDaemon(state: LabState, host: LabHost, binary: string, extraArgs: readonly string[] = []): Promise<LaunchedDaemon> {
  await mkdir(host.dataDir, { recursive: true });
  await mkdir(host.runDir, { recursive: true });
  const procsFiles = await makeDaemonCgroup(host.daemonCgroup);
  const argv = ['nsenter', `--net=/var/run/netns/${host.netns}`, '--', binary, ...skiffdArgs(state, host), ...extraArgs];
  const logPath = join(host.dataDir, DAEMON_LOG_FILE);
  const logOffset = (await stat(logPath).catch(() => undefined))?.size ?? 0;
  const log = openSync(logPath, 'a');
  try {
    const child = spawn('/bin/sh', ['-c', LAUNCHER_SCRIPT, 'skiffd-launch', String(procsFiles.length), ...procsFiles, ...argv], {
      stdio: ['ignore', log, log],
      detached: true,
    });
    const pid = child.pid;
    if (pid === undefined) throw new Error(`cannot start skiffd on ${host.name}: spawn gave no pid`);
    child.unref();
    return { host, pid, logOffset };
  } finally {
    closeSync(log);
  }
}

/** The last LOG_TAIL_BYTES of a host's skiffd.log. */
export async function daemonLogTail(host: LabHost): Promise<string> {
  const text = await readFile(join(host.dataDir, DAEMON_LOG_FILE), 'utf8').catch(() => '');
  return text.slice(-LOG_TAIL_BYTES).trimEnd();
}

/** True when a TCP connect to `ip:port` (from the root netns, over the lab bridge) succeeds. */
export function acceptsTcp(address: string): Promise<boolean> {
  const separator = address.lastIndexOf(':');
  const host = address.slice(0, separator);
  const port = Number(address.slice(separator + 1));
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: TCP_PROBE_TIMEOUT_MS });
    const done = (result: boolean): void => {
      socket.destroy();
      resolve(result);
    };
    socket.once('connect', () => done(true));
    socket.once('timeout', () => done(false));
    socket.once('error', () => done(false));
  });
}

/**
 * Waits until every launched skiffd has logged DAEMON_READY_MARKER (since its launch) and every
 * manager among them accepts TCP on :4242. A skiffd that dies, or a deadline that passes, fails
 * with the host's name and its log tail.
 */
export async function waitDaemonsReady(launched: readonly LaunchedDaemon[], timeoutMs = DAEMON_READY_TIMEOUT_MS): Promise<void> {
  let died: LabHost | undefined;
  const pending = new Set(launched);
  const ready = await waitFor(async () => {
    for (const daemon of pending) {
      if (!(await isAlive(daemon.pid))) {
        died = daemon.host;
        return true;
      }
      const output = await readFile(join(daemon.host.dataDir, DAEMON_LOG_FILE)).catch(() => Buffer.alloc(0));
      if (!output.subarray(daemon.logOffset).toString().includes(DAEMON_READY_MARKER)) continue;
      if ((await runsManagerRole(daemon.host)) && !(await acceptsTcp(`${daemon.host.addr}:4242`))) continue;
      pending.delete(daemon);
    }
    return pending.size === 0;
  }, timeoutMs);
  if (died !== undefined) {
    throw new Error(`cannot start skiffd on ${died.name}: it exited; ${join(died.dataDir, DAEMON_LOG_FILE)} ends with:\n${await daemonLogTail(died)}`);
  }
  if (!ready) {
    const hosts = [...pending].map((daemon) => daemon.host);
    const tails = await Promise.all(hosts.map(async (host) => `--- ${host.name}:\n${await daemonLogTail(host)}`));
    throw new Error(
      `cannot start the lab's skiffd: ${hosts.map((host) => host.name).join(', ')} not ready (log "${DAEMON_READY_MARKER}", managers accept TCP) within ${timeoutMs} ms\n${tails.join('\n')}`,
    );
  }
}

/**
 * Whether `host`'s skiffd runs the manager role: its node certificate says so (a worker promoted
 * since `lab up`, or a manager demoted, follows its certificate); the lab's role before it has one.
 */
async function runsManagerRole(host: LabHost): Promise<boolean> {
  const role = await certificateRoleIn(join(host.dataDir, 'certs'));
  return role === undefined ? host.role === 'manager' : role === 'manager';
}

/** The recorded skiffd pid of `host` if it is still that host's daemon; 0 otherwise. */
export async function livePid(host: LabHost): Promise<number> {
  if (host.pid <= 0 || !(await isAlive(host.pid))) return 0;
  // Guard against a recycled pid: the process must still be in the host's daemon cgroup.
  return (await pidsInCgroupTree(host.daemonCgroup)).includes(host.pid) ? host.pid : 0;
}

/** SIGTERM to skiffd and wait for it to exit; fails loudly (leaving it running) after the deadline. */
export async function stopDaemonGracefully(host: LabHost, timeoutMs = DAEMON_STOP_TIMEOUT_MS): Promise<void> {
  const pid = await livePid(host);
  if (pid === 0) return;
  signalProcess(pid, 'SIGTERM');
  if (!(await waitFor(async () => !(await isAlive(pid)), timeoutMs))) {
    throw new Error(`cannot stop skiffd on ${host.name}: pid ${pid} still alive ${timeoutMs} ms after SIGTERM (see ${join(host.dataDir, DAEMON_LOG_FILE)})`);
  }
}

/**
 * A host crash: SIGKILL to skiffd and to every process in the host's daemon cgroup (conmon) and
 * container cgroup parent (every container process), until both trees are empty.
 */
export async function crashHost(host: LabHost): Promise<number> {
  const pid = await livePid(host);
  if (pid !== 0) signalProcess(pid, 'SIGKILL');
  const killed = (await killCgroupTree(host.daemonCgroup)) + (await killAllInCgroupParent(host.cgroupParent));
  return killed + (pid === 0 ? 0 : 1);
}
