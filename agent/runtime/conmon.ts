/**
 * Creates a container under conmon, the container monitor: conmon runs `runc create`, holds the
 * container's stdio, writes its output to a k8s-file log and, when the container exits, its exit
 * code to `exitDir/<id>`. conmon daemonizes into its own session, so containers outlive the agent.
 *
 * Handshake: conmon reports the outcome of `runc create` on the fd named by `_OCI_SYNCPIPE` as
 * one JSON line, `{"data": <pid>}` or `{"data": -1, "message": "<runc's error>"}`. The container
 * is then in `created` state; the caller networks it and runs `runc start`.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import type { Readable } from 'node:stream';
import { runcErrorMessage } from './runc.js';

export const CONMON_PATH = '/usr/bin/conmon';
/** How long `runc create` under conmon may take before we give up. */
export const CONMON_CREATE_TIMEOUT_MS = 15_000;
/** Largest sync message we accept (runc's error text included). */
const MAX_SYNC_MESSAGE_BYTES = 64 * 1024;

export interface ConmonCreateParams {
  containerId: string;
  bundleDir: string;
  runcPath: string;
  runcRoot: string;
  containerPidFile: string;
  conmonPidFile: string;
  exitDir: string;
  persistDir: string;
  logPath: string;
  socketDir: string;
  /** conmon's own stderr (it reports its failures there). */
  stderrPath: string;
}

/** conmon's argv for one container (exported for tests). */
export function conmonArgs(params: ConmonCreateParams): string[] {
  return [
    '--api-version', '1',
    '--cid', params.containerId,
    '--cuuid', params.containerId,
    '--name', params.containerId,
    '--runtime', params.runcPath,
    '--runtime-arg', `--root=${params.runcRoot}`,
    '--bundle', params.bundleDir,
    '--container-pidfile', params.containerPidFile,
    '--conmon-pidfile', params.conmonPidFile,
    '--exit-dir', params.exitDir,
    '--persist-dir', params.persistDir,
    '--log-path', `k8s-file:${params.logPath}`,
    '--log-level', 'warning',
    '--socket-dir-path', params.socketDir,
  ];
}

/** Runs conmon; resolves with the container init's host pid once `runc create` succeeded. */
export async function createWithConmon(params: ConmonCreateParams): Promise<number> {
  const stderr = await fs.open(params.stderrPath, 'w');
  let child;
  try {
    child = spawn(CONMON_PATH, conmonArgs(params), {
      detached: true, // its own session: the agent's death or signals never reach it
      // conmon writes its OOM marker ("oom") into its working directory: keep it in the bundle,
      // where the runtime looks for it, never in the agent's cwd.
      cwd: params.bundleDir,
      stdio: ['ignore', 'ignore', stderr.fd, 'pipe'],
      env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', _OCI_SYNCPIPE: '3' },
    });
  } finally {
    await stderr.close();
  }
  const syncPipe = child.stdio[3] as Readable | null;
  if (syncPipe === null) throw new Error('cannot start conmon: no sync pipe');
  try {
    const message = await readSyncMessage(syncPipe, () => fs.readFile(params.stderrPath, 'utf8').catch(() => ''));
    if (message.data <= 0) throw new Error(runcErrorMessage(message.message ?? 'conmon reported no pid'));
    return message.data;
  } finally {
    syncPipe.destroy();
    child.unref();
  }
}

interface SyncMessage {
  data: number;
  message?: string;
}

function readSyncMessage(pipe: Readable, conmonStderr: () => Promise<string>): Promise<SyncMessage> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let settled = false;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const failWithStderr = (reason: string): void => {
      void conmonStderr().then((text) => finish(() => reject(new Error(text.trim() || reason))));
    };
    const timer = setTimeout(() => failWithStderr(`conmon gave no answer within ${CONMON_CREATE_TIMEOUT_MS} ms`), CONMON_CREATE_TIMEOUT_MS);
    pipe.setEncoding('utf8');
    pipe.on('data', (chunk: string) => {
      buffered += chunk;
      if (buffered.length > MAX_SYNC_MESSAGE_BYTES) return finish(() => reject(new Error('conmon sent an oversized sync message')));
      const newline = buffered.indexOf('\n');
      if (newline < 0) return;
      try {
        const parsed = JSON.parse(buffered.slice(0, newline)) as unknown;
        finish(() => resolve(parseSyncMessage(parsed)));
      } catch (error) {
        finish(() => reject(error instanceof Error ? error : new Error(String(error))));
      }
    });
    pipe.on('end', () => failWithStderr('conmon closed its sync pipe without an answer'));
    pipe.on('error', (error) => finish(() => reject(error)));
  });
}

function parseSyncMessage(value: unknown): SyncMessage {
  if (typeof value !== 'object' || value === null) throw new Error('conmon sent a malformed sync message');
  const { data, message } = value as Record<string, unknown>;
  if (typeof data !== 'number') throw new Error(`conmon sent a sync message without data: ${JSON.stringify(value)}`);
  return typeof message === 'string' ? { data, message } : { data };
}
