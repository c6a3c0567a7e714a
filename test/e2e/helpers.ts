/**
 * Helpers for e2e tests on the lab: run the real CLI, wait on conditions with deadlines, read a
 * container's namespaces. Every lab a test makes has a unique name and its own SKIFF_HOME.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TaskRow } from '../../cli/commands/service-rows.js';

export const repoRoot = join(import.meta.dirname, '../..');
const skiffBin = join(repoRoot, 'bin/skiff');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** A unique lab name ([a-z0-9]{1,8}) and a private CLI home for one test file. */
export function uniqueLab(prefix: string): { name: string; home: string } {
  const name = `${prefix}${randomBytes(3).toString('hex')}`.slice(0, 8);
  return { name, home: mkdtempSync(join(tmpdir(), `skiff-e2e-${name}-`)) };
}

/** Runs `file ARGS` with `env`, collecting its output; SIGKILL after `timeoutMs`; never throws on a non-zero exit. */
function runCollecting(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** Runs `bin/skiff ARGS` with the given SKIFF_HOME; never throws on a non-zero exit. */
export function skiff(home: string, args: string[], timeoutMs = 120_000, env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return runCollecting(skiffBin, args, { ...env, SKIFF_HOME: home }, timeoutMs);
}

/**
 * The environment of the stock `docker` CLI (this machine's client; no engine) against a
 * manager's Docker API socket, with `configDir` as its config and home, so nothing of the
 * machine's own config is read.
 */
export function dockerEnv(socket: string, configDir: string): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '', HOME: configDir, DOCKER_CONFIG: configDir, DOCKER_HOST: `unix://${socket}` };
}

/** Runs the stock `docker` CLI against a manager's Docker API socket (see dockerEnv); never throws on a non-zero exit. */
export function docker(socket: string, configDir: string, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  return runCollecting('docker', args, dockerEnv(socket, configDir), timeoutMs);
}

/** Runs the CLI and parses its `--format json` output; throws with stderr on failure. */
export async function skiffJson<T>(home: string, args: string[]): Promise<T> {
  const result = await skiff(home, [...args, '--format', 'json']);
  if (result.code !== 0) throw new Error(`skiff ${args.join(' ')} failed (${result.code}): ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Polls `probe` until it returns a value other than undefined, or throws after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 200): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

export type NamespaceKind = 'pid' | 'net' | 'mnt' | 'uts' | 'ipc';
export const NAMESPACE_KINDS: readonly NamespaceKind[] = ['pid', 'net', 'mnt', 'uts', 'ipc'];

/** The namespace identities (e.g. "net:[4026532]") of a process. */
export function namespacesOf(pid: number | 'self'): Record<NamespaceKind, string> {
  const result = {} as Record<NamespaceKind, string>;
  for (const kind of NAMESPACE_KINDS) result[kind] = readlinkSync(`/proc/${pid}/ns/${kind}`);
  return result;
}

/** The `service ps --format json` row, as the CLI defines it. */
export type { TaskRow };

export const running = (rows: TaskRow[]): TaskRow[] => rows.filter((row) => row.state === 'running' && row.desiredState === 'running');
