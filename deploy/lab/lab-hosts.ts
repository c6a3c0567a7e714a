// Per-host lab commands: status, exec, and the fault injections restart (graceful), kill (crash)
// and start (boot a killed host).
import { spawn } from 'node:child_process';
import { registryPidAlive } from '../registry/registry.js';
import { crashHost, livePid, skiffdPath, startDaemon, stopDaemonGracefully, waitDaemonsReady } from './daemons.js';
import { checkLabName } from './naming.js';
import { readLabState, writeLabState, type LabHost, type LabRole, type LabState } from './state.js';
import { run, signalNumber, type CommandResult } from './system.js';

/** One row of `skiff lab status`. `pid` is 0 when the host's skiffd is not running. */
export interface LabHostStatus {
  name: string;
  addr: string;
  role: LabRole;
  pid: number;
  dataDir: string;
  nodeId: string;
  netns: string;
}

/** `skiff lab status --format json`. */
export interface LabStatus {
  name: string;
  registry: string;
  registryPid: number;
  subnet: string;
  hosts: LabHostStatus[];
}

/** Longest `labExec` waits for its command by default. */
export const EXEC_TIMEOUT_MS = 60_000;

/** Loads lab `name`'s state or fails with a message that says how to create it. */
export async function requireLab(name: string): Promise<LabState> {
  checkLabName(name);
  const state = await readLabState(name);
  if (state === undefined) throw new Error(`cannot find lab ${name}: run \`skiff lab up --name ${name}\``);
  return state;
}

function requireHost(state: LabState, hostName: string): LabHost {
  const host = state.hosts.find((candidate) => candidate.name === hostName);
  if (host === undefined) {
    throw new Error(`cannot find host "${hostName}" in lab ${state.name}: hosts are ${state.hosts.map((candidate) => candidate.name).join(', ')}`);
  }
  return host;
}

/** The lab's hosts with the live pid of each skiffd, and its registry address. */
export async function labStatus(name: string): Promise<LabStatus> {
  const state = await requireLab(name);
  const hosts: LabHostStatus[] = [];
  for (const host of state.hosts) {
    hosts.push({ name: host.name, addr: host.addr, role: host.role, pid: await livePid(host), dataDir: host.dataDir, nodeId: host.nodeId, netns: host.netns });
  }
  return {
    name: state.name,
    registry: state.registry.addr,
    registryPid: state.registry.pid > 0 && registryPidAlive(state.registry.pid) ? state.registry.pid : 0,
    subnet: `${state.bridgeAddr.replace(/\.1$/, '.0')}/24`,
    hosts,
  };
}

/** argv that runs `argv` inside `host`'s network namespace (network only, like skiffd). */
export function execArgv(host: LabHost, argv: readonly string[]): string[] {
  return ['nsenter', `--net=/var/run/netns/${host.netns}`, '--', ...argv];
}

/** Runs `argv` in `hostName`'s netns and collects its exit code and output. */
export async function labExec(name: string, hostName: string, argv: readonly string[], options: { timeoutMs?: number } = {}): Promise<CommandResult> {
  if (argv.length === 0) throw new Error('cannot exec in lab host: no command given');
  const host = requireHost(await requireLab(name), hostName);
  const [command, ...args] = execArgv(host, argv);
  return run(command as string, args, { timeoutMs: options.timeoutMs ?? EXEC_TIMEOUT_MS });
}

/** Runs `argv` in `hostName`'s netns with inherited stdio; resolves with its exit status. */
export async function labExecInteractive(name: string, hostName: string, argv: readonly string[]): Promise<number> {
  if (argv.length === 0) throw new Error('cannot exec in lab host: no command given');
  const host = requireHost(await requireLab(name), hostName);
  const [command, ...args] = execArgv(host, argv);
  return new Promise((resolve, reject) => {
    const child = spawn(command as string, args, { stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => resolve(code ?? 128 + signalNumber(signal)));
  });
}

/** Graceful restart: SIGTERM, wait for exit (or fail loudly), start with the same flags, wait ready. */
export async function labRestart(name: string, hostName: string): Promise<LabHost> {
  const state = await requireLab(name);
  const host = requireHost(state, hostName);
  const binary = skiffdPath();
  await stopDaemonGracefully(host);
  host.pid = 0;
  await writeLabState(state);
  return bootHost(state, host, binary);
}

/** Crash: SIGKILL skiffd and every process of the host (daemon cgroup and container cgroups). */
export async function labKill(name: string, hostName: string): Promise<number> {
  const state = await requireLab(name);
  const host = requireHost(state, hostName);
  const killed = await crashHost(host);
  host.pid = 0;
  await writeLabState(state);
  return killed;
}

/**
 * Boots a host whose skiffd is not running (no-op when it is). `extraArgs` go to this start of
 * skiffd only, e.g. ['--force-new-cluster'].
 */
export async function labStart(name: string, hostName: string, extraArgs: readonly string[] = []): Promise<LabHost> {
  const state = await requireLab(name);
  const host = requireHost(state, hostName);
  if ((await livePid(host)) !== 0) return host;
  return bootHost(state, host, skiffdPath(), extraArgs);
}

async function bootHost(state: LabState, host: LabHost, binary: string, extraArgs: readonly string[] = []): Promise<LabHost> {
  const daemon = await startDaemon(state, host, binary, extraArgs);
  host.pid = daemon.pid;
  await writeLabState(state);
  await waitDaemonsReady([daemon]);
  return host;
}
