/**
 * A local OCI distribution registry for the lab and the tests: Debian's `docker-registry`
 * (distribution 2.8) with filesystem storage, plain HTTP, no auth, and nothing that talks to the
 * internet. Either attached to the caller (`startRegistry`, stopped with `stop()`) or detached so it
 * outlives the CLI process that started it (`startRegistryDetached`, stopped by pid).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The registry binary from Debian's `docker-registry` package. */
export const REGISTRY_BINARY = '/usr/bin/docker-registry';
/** How long a fresh registry may take before `GET /v2/` must answer 200. */
export const REGISTRY_READY_TIMEOUT_MS = 15_000;
/** Pause between two readiness probes. */
export const REGISTRY_READY_POLL_MS = 50;
/** How long one readiness probe may take. */
export const REGISTRY_PROBE_TIMEOUT_MS = 1_000;
/** How long `stop()` waits after SIGTERM before it sends SIGKILL. */
export const REGISTRY_STOP_GRACE_MS = 5_000;
/** How much of the registry's log a startup error quotes. */
const LOG_TAIL_BYTES = 2_000;

export interface RegistryOptions {
  /** Holds the config, the log and the blob storage (`storage/`). Created if missing. */
  dataDir: string;
  /** `ip:port` the registry listens on, e.g. `127.0.0.1:5000` or `198.18.0.1:5000`. */
  listenAddr: string;
  /** Network namespace to run in (e.g. `/var/run/netns/h1`); the caller's namespace when absent. */
  netnsPath?: string;
}

/** A registry attached to this process. */
export interface RunningRegistry {
  /** `ip:port` it answers on. */
  addr: string;
  pid: number;
  /** Kills the registry (TERM, then KILL after a grace period) and resolves once it has exited. */
  stop(): Promise<void>;
}

/** Paths of the files the registry lives on, all under `dataDir`. */
export function registryPaths(dataDir: string): { config: string; log: string; storage: string; pidFile: string } {
  return {
    config: join(dataDir, 'config.yml'),
    log: join(dataDir, 'registry.log'),
    storage: join(dataDir, 'storage'),
    pidFile: join(dataDir, 'registry.pid'),
  };
}

/** The registry config: filesystem storage, plain HTTP on `listenAddr`, deletes allowed, quiet logs. */
export function registryConfigYaml(storageDir: string, listenAddr: string): string {
  // No `reporting`, `notifications`, `http.debug` or `proxy` sections: nothing leaves the machine.
  return [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  formatter: text',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${JSON.stringify(storageDir)}`,
    '  delete:',
    '    enabled: true',
    '  maintenance:',
    '    uploadpurging:',
    '      enabled: false',
    'http:',
    `  addr: ${JSON.stringify(listenAddr)}`,
    '  headers:',
    '    X-Content-Type-Options: [nosniff]',
    '',
  ].join('\n');
}

function parseListenAddr(listenAddr: string): void {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(listenAddr);
  const port = match?.[2] === undefined ? NaN : Number(match[2]);
  if (!match || !(port > 0 && port < 65536)) {
    throw new Error(`cannot start registry: listenAddr "${listenAddr}" is not an IPv4 ip:port`);
  }
}

async function prepare(options: RegistryOptions): Promise<{ command: string; args: string[] }> {
  parseListenAddr(options.listenAddr);
  const paths = registryPaths(options.dataDir);
  await mkdir(paths.storage, { recursive: true });
  await writeFile(paths.config, registryConfigYaml(paths.storage, options.listenAddr));
  // Without this check a second registry on a taken port would look ready: the first one answers.
  if (await probeReady(options.listenAddr, options.netnsPath)) {
    throw new Error(`cannot start registry on ${options.listenAddr}: something already answers GET /v2/ there`);
  }
  // nsenter without --fork execs the registry, so the pid we hold is the registry's own.
  return options.netnsPath === undefined
    ? { command: REGISTRY_BINARY, args: ['serve', paths.config] }
    : { command: 'nsenter', args: [`--net=${options.netnsPath}`, REGISTRY_BINARY, 'serve', paths.config] };
}

function spawnRegistry(options: RegistryOptions, command: string, args: string[], detached: boolean): ChildProcess {
  const logFd = openSync(registryPaths(options.dataDir).log, 'a');
  try {
    return spawn(command, args, { stdio: ['ignore', logFd, logFd], detached });
  } finally {
    closeSync(logFd);
  }
}

/** One readiness probe: does `GET http://addr/v2/` answer 200 (from inside the netns when given)? */
async function probeReady(addr: string, netnsPath: string | undefined): Promise<boolean> {
  const url = `http://${addr}/v2/`;
  if (netnsPath === undefined) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(REGISTRY_PROBE_TIMEOUT_MS) });
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }
  return new Promise((resolve) => {
    // No `wget -T`: Debian's static busybox crashes on it. The spawn timeout bounds the probe instead.
    const probe = spawn('nsenter', [`--net=${netnsPath}`, '/bin/busybox', 'wget', '-q', '-O', '/dev/null', url], {
      stdio: 'ignore',
      timeout: REGISTRY_PROBE_TIMEOUT_MS,
    });
    probe.on('error', () => resolve(false));
    probe.on('exit', (code) => resolve(code === 0));
  });
}

async function logTail(dataDir: string): Promise<string> {
  try {
    const text = await readFile(registryPaths(dataDir).log, 'utf8');
    return text.slice(-LOG_TAIL_BYTES).trim();
  } catch {
    return '';
  }
}

async function waitReady(options: RegistryOptions, child: ChildProcess): Promise<void> {
  let exited: string | undefined;
  const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
    exited = `exited with ${code ?? signal ?? 'unknown status'}`;
  };
  const onError = (error: Error): void => {
    exited = `failed to spawn: ${error.message}`;
  };
  child.on('exit', onExit);
  child.on('error', onError);
  try {
    const deadline = Date.now() + REGISTRY_READY_TIMEOUT_MS;
    for (;;) {
      if (exited !== undefined) {
        throw new Error(`cannot start registry on ${options.listenAddr}: it ${exited}: ${await logTail(options.dataDir)}`);
      }
      if (await probeReady(options.listenAddr, options.netnsPath)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `cannot start registry on ${options.listenAddr}: GET /v2/ did not answer 200 within ${REGISTRY_READY_TIMEOUT_MS} ms: ${await logTail(options.dataDir)}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, REGISTRY_READY_POLL_MS));
    }
  } finally {
    child.off('exit', onExit);
    child.off('error', onError);
  }
}

/**
 * Starts a registry attached to this process and resolves once `GET /v2/` answers 200. If it does
 * not become ready within REGISTRY_READY_TIMEOUT_MS it is killed and the promise rejects with the
 * tail of its log.
 */
export async function startRegistry(options: RegistryOptions): Promise<RunningRegistry> {
  const { command, args } = await prepare(options);
  const child = spawnRegistry(options, command, args, false);
  const exitedPromise = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
    child.once('error', () => resolve());
  });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), REGISTRY_STOP_GRACE_MS);
      await exitedPromise;
      clearTimeout(timer);
    }
    await exitedPromise;
  };
  try {
    await waitReady(options, child);
  } catch (error) {
    await stop();
    throw error;
  }
  if (child.pid === undefined) throw new Error('cannot start registry: spawned process has no pid');
  return { addr: options.listenAddr, pid: child.pid, stop };
}

/**
 * Starts a registry in its own session so it outlives this process, writes its pid to `pidFile`
 * (default `dataDir/registry.pid`) and resolves with the pid once `GET /v2/` answers 200.
 * Stop it with `stopRegistryPid`.
 */
export async function startRegistryDetached(options: RegistryOptions & { pidFile?: string }): Promise<number> {
  const { command, args } = await prepare(options);
  const child = spawnRegistry(options, command, args, true);
  const pid = child.pid;
  try {
    await waitReady(options, child);
  } catch (error) {
    if (pid !== undefined) await stopRegistryPid(pid);
    throw error;
  }
  if (pid === undefined) throw new Error('cannot start registry: spawned process has no pid');
  await writeFile(options.pidFile ?? registryPaths(options.dataDir).pidFile, `${pid}\n`);
  child.unref();
  return pid;
}

/** True when `pid` is alive and is a docker-registry (guards against a recycled pid). */
export function registryPidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readProcFile(pid, 'cmdline').includes('docker-registry') && !readProcFile(pid, 'stat').includes(') Z ');
  } catch {
    return false;
  }
}

function readProcFile(pid: number, name: string): string {
  // Synchronous on purpose: /proc reads do not block and callers want a plain boolean.
  return readFileSync(`/proc/${pid}/${name}`, 'latin1');
}

/** Stops a (detached) registry by pid: TERM, then KILL after REGISTRY_STOP_GRACE_MS; resolves once gone. */
export async function stopRegistryPid(pid: number): Promise<void> {
  if (!registryPidAlive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + REGISTRY_STOP_GRACE_MS;
  let killed = false;
  while (registryPidAlive(pid)) {
    if (!killed && Date.now() > deadline) {
      killed = true;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        return;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, REGISTRY_READY_POLL_MS));
  }
}
