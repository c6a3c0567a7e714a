/** Flags of `skiff service logs` and `skiff task exec`, parsed into request fields. */
import type { LogsOptions } from '../../proto/skiff/v1/attach.js';
import type { ExecRequest } from '../../proto/skiff/v1/attach.js';
import { FlagError, parseCount, parseDuration } from './service-flags.js';

export interface LogsFlags {
  follow: boolean;
  tail: string;
  since?: string;
  timestamps: boolean;
}

/** `--tail N|all`: lines per task from the end; -1 = all. */
export function parseTail(value: string): number {
  if (value.trim() === 'all') return -1;
  return parseCount('--tail', value);
}

/** `--since T`: a duration before now (10m, 1h30m) or an RFC 3339 time; Unix ms. */
export function parseSince(value: string, nowMs: number): number {
  const trimmed = value.trim();
  if (/^\d{4}-\d{2}-\d{2}/.test(trimmed)) {
    const parsed = Date.parse(trimmed.replace(/(\.\d{3})\d+/, '$1'));
    if (Number.isNaN(parsed)) throw new FlagError(`invalid value "${value}" for --since: not an RFC 3339 time (e.g. 2026-11-23T19:00:00Z)`);
    return parsed;
  }
  try {
    return nowMs - parseDuration('--since', trimmed);
  } catch {
    throw new FlagError(`invalid value "${value}" for --since: use a duration such as 10m or 1h30m, or an RFC 3339 time`);
  }
}

export function logsOptions(flags: LogsFlags, nowMs: number): LogsOptions {
  return { follow: flags.follow, tail: parseTail(flags.tail), sinceMs: flags.since === undefined ? 0 : parseSince(flags.since, nowMs) };
}

/** The line prefix, as `docker service logs` prints it: `web.1.abcdef123456@host1`. */
export function logPrefix(taskName: string, taskId: string, node: string): string {
  return `${taskName}.${taskId.slice(0, 12)}@${node}`;
}

export interface ExecFlags {
  interactive: boolean;
  env: string[];
  user?: string;
  workdir?: string;
}

export function execRequest(task: string, argv: string[], flags: ExecFlags): ExecRequest {
  if (argv.length === 0 || argv[0] === '') throw new FlagError('cannot exec: give the command after the task, e.g. skiff task exec web.1 -- sh -c "echo hi"');
  for (const entry of flags.env) {
    if (!/^[^=]+=/.test(entry)) throw new FlagError(`invalid value "${entry}" for --env: must be KEY=VALUE`);
  }
  if (flags.workdir !== undefined && !flags.workdir.startsWith('/')) throw new FlagError(`invalid value "${flags.workdir}" for --workdir: must be an absolute path`);
  return { task, argv, env: flags.env, user: flags.user ?? '', workdir: flags.workdir ?? '', attachStdin: flags.interactive };
}
