/**
 * Daemons of the raft benchmark (skiffd and etcd): spawned with their output in a log file,
 * killed with -9 for the failover, stopped (TERM, then KILL) by the cleanup. Also free loopback
 * ports and log-file polling.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:net';

/** How long a daemon gets to exit after SIGTERM before it is killed with SIGKILL. */
export const STOP_GRACE_MS = 5_000;

/** A daemon started by the benchmark. */
export interface Daemon {
  readonly label: string;
  readonly logPath: string;
  readonly pid: number;
  /** Resolves when the process has exited (at once if it already has). */
  readonly exited: Promise<void>;
  isRunning(): boolean;
  /** kill -9; the failover's clock starts just before this. */
  killHard(): void;
  /** SIGTERM, then SIGKILL after STOP_GRACE_MS; resolves once it has exited. */
  stop(): Promise<void>;
}

/** Spawns `file args...` with stdout and stderr appended to `logPath`; throws if spawn fails. */
export async function startDaemon(label: string, file: string, args: readonly string[], logPath: string): Promise<Daemon> {
  const logFd = openSync(logPath, 'a');
  let child: ChildProcess;
  try {
    child = spawn(file, args, { stdio: ['ignore', logFd, logFd], env: process.env });
  } finally {
    closeSync(logFd);
  }
  let running = true;
  const exited = new Promise<void>((resolve) => child.once('exit', () => { running = false; resolve(); }));
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (error) => reject(new Error(`cannot start ${label} (${file}): ${error.message}`)));
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error(`cannot start ${label}: no pid`);
  return {
    label,
    logPath,
    pid,
    exited,
    isRunning: () => running,
    killHard: () => { if (running) child.kill('SIGKILL'); },
    async stop() {
      if (!running) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A TCP port on 127.0.0.1 that was free a moment ago (the kernel picks it). */
export async function freeLoopbackPort(): Promise<number> {
  const port = await bindLoopback(0);
  if (port === undefined) throw new Error('cannot pick a free port');
  return port;
}

/** Binds `port` on 127.0.0.1 (0: any) and lets it go; the port bound, or undefined if it was taken. */
function bindLoopback(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : undefined));
    });
  });
}

/**
 * `count` free loopback ports p whose p + 1 is free too, no two pairs overlapping: a manager
 * listens for joins on its gRPC port + 1 (manager.ts), and two managers given adjacent ports,
 * or a port whose next one was taken, failed to start with EADDRINUSE.
 */
export async function freeLoopbackPortPairs(count: number): Promise<number[]> {
  const taken = new Set<number>();
  const ports: number[] = [];
  while (ports.length < count) {
    const port = await freeLoopbackPort();
    if (port >= 65535 || taken.has(port) || taken.has(port + 1) || (await bindLoopback(port + 1)) === undefined) continue;
    taken.add(port).add(port + 1);
    ports.push(port);
  }
  return ports;
}

/** `count` distinct free loopback ports. */
export async function freeLoopbackPorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freeLoopbackPort());
  return [...ports];
}

/** The JSON lines of a daemon's log whose `msg` is `message` (non-JSON lines are skipped). */
export async function logRecords(logPath: string, message: string): Promise<Array<Record<string, unknown>>> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  const records: Array<Record<string, unknown>> = [];
  for (const line of text.split('\n')) {
    if (!line.includes(message)) continue;
    try {
      const record: unknown = JSON.parse(line);
      if (typeof record === 'object' && record !== null && (record as Record<string, unknown>)['msg'] === message) records.push(record as Record<string, unknown>);
    } catch {
      // A partial last line or a non-JSON line (e.g. a Node warning): not a log record.
    }
  }
  return records;
}

/** The last few lines of a log, for an error message. */
export async function logTail(logPath: string, lines = 3): Promise<string> {
  const text = await readFile(logPath, 'utf8').catch(() => '');
  return text.trim().split('\n').slice(-lines).join(' | ');
}
