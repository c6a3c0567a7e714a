/**
 * A thin client for the runc CLI with this host's `--root`. Reads are tolerant (a missing
 * container is `undefined`); writes return runc's own error text so callers can quote it.
 */
import { runCommand } from './command.js';
import { startThroughExecFifo } from './exec-fifo.js';

export const RUNC_PATH = '/usr/sbin/runc';
/** Deadline for one runc invocation; runc itself answers in milliseconds. */
const RUNC_TIMEOUT_MS = 30_000;

export type RuncStatus = 'creating' | 'created' | 'running' | 'paused' | 'stopped';

export interface RuncState {
  id: string;
  pid: number;
  status: RuncStatus;
  bundle: string;
}

export type RuncResult = { ok: true } | { ok: false; message: string };

export class RuncClient {
  constructor(
    readonly root: string,
    readonly runcPath: string = RUNC_PATH,
  ) {}

  /** The container's state, or undefined when runc does not know it. */
  async state(containerId: string): Promise<RuncState | undefined> {
    const result = await this.invoke(['state', containerId]);
    if (result.exitCode !== 0) {
      if (/does not exist|not exist/.test(result.stderr)) return undefined;
      throw new Error(`cannot read runc state of ${containerId}: ${runcErrorMessage(result.stderr)}`);
    }
    return parseRuncState(JSON.parse(result.stdout) as unknown);
  }

  /** Every container under this root. */
  async list(): Promise<RuncState[]> {
    const result = await this.invoke(['list', '--format', 'json']);
    if (result.exitCode !== 0) throw new Error(`cannot list runc containers: ${runcErrorMessage(result.stderr)}`);
    const parsed = JSON.parse(result.stdout.trim() || 'null') as unknown;
    if (parsed === null) return [];
    if (!Array.isArray(parsed)) throw new Error('cannot list runc containers: runc list did not print an array');
    return parsed.map(parseRuncState);
  }

  start(containerId: string): Promise<RuncResult> {
    return this.mutate(['start', containerId]);
  }

  /**
   * Starts a container that is `created` with init pid `initPid` the way `runc start` does, but
   * without its process (exec-fifo.ts); `runc start` itself when the fifo is not there.
   */
  async startCreated(containerId: string, initPid: number): Promise<RuncResult> {
    const result = await startThroughExecFifo(this.root, containerId, initPid, RUNC_TIMEOUT_MS).catch((error: unknown) => ({ ok: false as const, message: error instanceof Error ? error.message : String(error) }));
    return result === 'unsupported' ? this.start(containerId) : result;
  }

  /** `signal` as runc takes it: a name without SIG (`TERM`, `INT`) or a number. */
  kill(containerId: string, signal: string): Promise<RuncResult> {
    return this.mutate(['kill', containerId, signal]);
  }

  /** `runc delete --force`; a container runc never knew counts as deleted. */
  async forceDelete(containerId: string): Promise<RuncResult> {
    const result = await this.mutate(['delete', '--force', containerId]);
    if (!result.ok && /does not exist|not exist/.test(result.message)) return { ok: true };
    return result;
  }

  private async mutate(args: string[]): Promise<RuncResult> {
    const result = await this.invoke(args);
    return result.exitCode === 0 ? { ok: true } : { ok: false, message: runcErrorMessage(result.stderr) };
  }

  private invoke(args: string[]): ReturnType<typeof runCommand> {
    return runCommand(this.runcPath, ['--root', this.root, ...args], { timeoutMs: RUNC_TIMEOUT_MS });
  }
}

/** runc (logrus) prints `time="..." level=error msg="..."`; this returns the msg, unquoted. */
export function runcErrorMessage(stderr: string): string {
  const messages: string[] = [];
  for (const line of stderr.split('\n')) {
    const match = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
    if (match?.[1] !== undefined) messages.push(unquote(match[1]));
    else if (line.trim() !== '') messages.push(line.trim());
  }
  return messages.join('; ') || 'runc failed without a message';
}

function unquote(text: string): string {
  try {
    return JSON.parse(`"${text}"`) as string;
  } catch {
    return text;
  }
}

function parseRuncState(value: unknown): RuncState {
  if (typeof value !== 'object' || value === null) throw new Error('cannot parse runc state: not an object');
  const record = value as Record<string, unknown>;
  const { id, pid, status, bundle } = record;
  if (typeof id !== 'string' || typeof pid !== 'number' || typeof status !== 'string' || typeof bundle !== 'string') {
    throw new Error(`cannot parse runc state: unexpected fields in ${JSON.stringify(value)}`);
  }
  if (!['creating', 'created', 'running', 'paused', 'stopped'].includes(status)) {
    throw new Error(`cannot parse runc state of ${id}: unknown status ${status}`);
  }
  return { id, pid, status: status as RuncStatus, bundle };
}
