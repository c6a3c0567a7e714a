/**
 * `runc exec`: a process in a running container's namespaces and cgroup, with the container's
 * process settings (env, capabilities, seccomp, no_new_privs, rlimits) as the template. runc exec
 * relays signals to the process it started, but SIGKILL cannot be relayed, so kill() signals the
 * process itself through the pid runc writes. When runc itself fails (no such executable), it
 * exits non-zero and its message is on the process's stderr.
 */
import { spawn } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { errorMessage, readTextIfExists, waitFor } from './fs-util.js';
import { resolveUser } from './user.js';
import type { ExecOptions, ExecProcess } from './types.js';

/** How long kill() waits for runc to write the exec'd process's pid. */
const PID_FILE_WAIT_MS = 5_000;

export interface ExecTarget {
  runcPath: string;
  runcRoot: string;
  containerId: string;
  /** The container's rootfs (its /etc/passwd and /etc/group resolve a user name). */
  rootfs: string;
  /** A fresh path for runc's --pid-file of this exec. */
  pidFile: string;
}

/** The `runc exec` argv for these options (without the runc binary). */
export async function execArgs(target: ExecTarget, options: ExecOptions): Promise<string[]> {
  if (options.argv.length === 0 || options.argv[0] === '') throw new Error('cannot exec: the command is empty');
  const args = ['--root', target.runcRoot, 'exec', '--pid-file', target.pidFile];
  if (options.user !== '') {
    const [passwd, group] = await Promise.all([readTextIfExists(path.join(target.rootfs, 'etc/passwd')), readTextIfExists(path.join(target.rootfs, 'etc/group'))]);
    const user = resolveUser(options.user, passwd, group);
    args.push('--user', `${user.uid}:${user.gid}`);
    for (const gid of user.additionalGids) args.push('--additional-gids', String(gid));
  }
  if (options.workingDir !== '') {
    if (!path.isAbsolute(options.workingDir)) throw new Error(`cannot exec: working directory "${options.workingDir}" is not absolute`);
    args.push('--cwd', options.workingDir);
  }
  for (const entry of options.env) {
    if (!/^[^=]+=/.test(entry)) throw new Error(`cannot exec: environment entry "${entry}" is not KEY=VALUE`);
    args.push('--env', entry);
  }
  args.push(target.containerId, ...options.argv);
  return args;
}

export async function startExec(target: ExecTarget, options: ExecOptions): Promise<ExecProcess> {
  const args = await execArgs(target, options);
  await fs.rm(target.pidFile, { force: true });
  const child = spawn(target.runcPath, args, { stdio: [options.stdin ? 'pipe' : 'ignore', 'pipe', 'pipe'] });
  const exited = new Promise<number>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      void fs.rm(target.pidFile, { force: true });
      if (code === null) resolve(128 + (signal === 'SIGKILL' ? 9 : 15));
      else resolve(code);
    });
  });
  const kill = (signal: NodeJS.Signals = 'SIGKILL'): void => {
    void (async () => {
      const found = await waitFor(async () => ((await readTextIfExists(target.pidFile)) ?? '').trim() !== '', PID_FILE_WAIT_MS, 20);
      const pid = Number(((await readTextIfExists(target.pidFile)) ?? '').trim());
      if (found && Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, signal);
          return;
        } catch (error) {
          if (!errorMessage(error).includes('ESRCH')) throw error;
        }
      }
      child.kill(signal);
    })().catch(() => child.kill('SIGKILL'));
  };
  const { stdout, stderr } = child;
  if (stdout === null || stderr === null) throw new Error('cannot exec: runc started without output pipes');
  return {
    stdout,
    stderr,
    stdin: child.stdin ?? undefined,
    exited,
    kill,
  };
}
