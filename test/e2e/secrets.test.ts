/**
 * Issue 5 point 6, end to end on a lab (1 manager, 2 workers, real runc): a secret made from a
 * random value is readable inside the container that uses it at /run/secrets/NAME, from a tmpfs
 * on that node only; it appears in no file under any host's data dir and in no API or CLI
 * output; and it cannot be removed while a service uses it.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mountsUnder } from '../../agent/runtime/rootfs.js';
import { labDown, labUp, leftovers } from '../../deploy/lab/index.js';
import type { LabHost, LabState } from '../../deploy/lab/index.js';
import { type CliResult, repoRoot, running, skiff, skiffJson, type TaskRow, uniqueLab, waitFor } from './helpers.js';

const { name: lab, home } = uniqueLab('scrt');
let state: LabState;
const secretValue = `skiff-secret-${randomBytes(24).toString('hex')}`;
const configValue = `skiff-config-${randomBytes(24).toString('hex')}`;
/** Every CLI result of this file: none may show the secret. */
const outputs: CliResult[] = [];

async function cli(args: string[]): Promise<CliResult> {
  const result = await skiff(home, args);
  outputs.push(result);
  return result;
}

/** `bin/skiff ARGS` with `input` on stdin. */
function cliWithInput(args: string[], input: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(join(repoRoot, 'bin/skiff'), args, { env: { ...process.env, SKIFF_HOME: home }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const result = { code: code ?? -1, stdout, stderr };
      outputs.push(result);
      resolve(result);
    });
    child.stdin.end(input);
  });
}

const hostOf = (hostname: string): LabHost => {
  const host = state.hosts.find((candidate) => candidate.name === hostname);
  if (host === undefined) throw new Error(`no lab host ${hostname}`);
  return host;
};
/** The agent's tmpfs mounts of secret and config files, beside its runc root. */
const secretsDirOf = (host: LabHost): string => join(dirname(host.runcRoot), 'secrets');

/**
 * Every file under `dir` whose bytes contain `needle`. `skip` names directories left out: a
 * manager's Raft log holds the store, secrets included, and keeping it unreadable at rest is the
 * Raft storage's job (DESIGN.md §9), not the dispatcher's or the agent's.
 */
function filesContaining(dir: string, needle: string, skip: string[] = []): string[] {
  const found: string[] = [];
  const bytes = Buffer.from(needle);
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    const path = join(entry.parentPath, entry.name);
    if (!entry.isFile() || skip.some((skipped) => path.startsWith(`${skipped}/`))) continue;
    let content: Buffer;
    try {
      content = readFileSync(path);
    } catch {
      continue; // gone while we looked (a log rotated, a container removed)
    }
    if (content.includes(bytes)) found.push(path);
  }
  return found;
}

function expectNoLeak(texts: string[]): void {
  const base64 = Buffer.from(secretValue).toString('base64');
  for (const text of texts) {
    expect(text).not.toContain(secretValue);
    expect(text).not.toContain(base64);
  }
}

const ps = (service: string): Promise<TaskRow[]> => skiffJson<TaskRow[]>(home, ['service', 'ps', service]);

beforeAll(async () => {
  process.env['SKIFF_HOME'] = home;
  state = await labUp({ name: lab, managers: 1, workers: 2 });
  await waitFor('3 ready nodes', 60_000, async () => {
    const nodes = await skiffJson<Array<{ status: string }>>(home, ['node', 'ls']);
    return nodes.filter((node) => node.status === 'ready').length === 3 ? nodes : undefined;
  });
});

afterAll(async () => {
  await labDown(lab).catch(() => undefined);
  rmSync(home, { recursive: true, force: true });
});

describe('secrets and configs on the lab', () => {
  let task: TaskRow;

  it('secret create takes a file and config create takes stdin; ls and inspect never show the data', async () => {
    const file = join(home, 'db-password.txt');
    writeFileSync(file, secretValue, { mode: 0o600 });
    const created = await cli(['secret', 'create', '--label', 'team=db', 'db-password', file]);
    rmSync(file);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout.trim()).toMatch(/^[a-z0-9]{25}$/);
    const config = await cliWithInput(['config', 'create', 'app-conf', '-'], configValue);
    expect(config.code, config.stderr).toBe(0);

    const listed = await cli(['secret', 'ls', '--format', 'json']);
    expect(JSON.parse(listed.stdout)).toEqual([{ id: created.stdout.trim(), name: 'db-password', createdAt: expect.any(String), updatedAt: expect.any(String), labels: { team: 'db' } }]);
    const table = await cli(['secret', 'ls']);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+NAME\s+CREATED\s+UPDATED$/);
    expect(table.stdout).toContain('db-password');
    const inspected = await cli(['secret', 'inspect', 'db-password', '--format', 'json']);
    expect(inspected.code, inspected.stderr).toBe(0);
    const [object] = JSON.parse(inspected.stdout) as Array<{ spec: Record<string, unknown> }>;
    expect(object?.spec).toEqual({ name: 'db-password', labels: { team: 'db' } });
    const configInspected = await cli(['config', 'inspect', 'app-conf']);
    expect(configInspected.stdout).not.toContain(configValue);
    expect(configInspected.stdout).not.toContain(Buffer.from(configValue).toString('base64'));
  });

  it('secret and service create refuse oversize data, bad names and unknown secrets with clear errors', async () => {
    const big = join(home, 'big');
    writeFileSync(big, Buffer.alloc(600 * 1024, 1));
    const tooBig = await cli(['secret', 'create', 'big', big]);
    rmSync(big);
    expect(tooBig.code).not.toBe(0);
    expect(tooBig.stderr).toContain('cannot create secret "big": data is 614400 bytes, more than the secret size limit of 500 KiB (512000 bytes)');
    const badName = await cliWithInput(['secret', 'create', 'no/slashes', '-'], 'x');
    expect(badName.code).not.toBe(0);
    expect(badName.stderr).toContain('name "no/slashes" must start with a letter or digit');
    const unknown = await cli(['service', 'create', '--name', 'orphan', '--secret', 'nope', 'demo/web:v1']);
    expect(unknown.code).not.toBe(0);
    expect(unknown.stderr).toContain('cannot create service "orphan": secret "nope" not found');
    const clash = await cli(['service', 'create', '--name', 'orphan', '--secret', 'db-password', '--secret', 'db-password,target=db-password', 'demo/web:v1']);
    expect(clash.stderr).toContain('secret "db-password" and secret "db-password" both target /run/secrets/db-password');
    expect((await skiffJson<unknown[]>(home, ['service', 'ls']))).toEqual([]);
  });

  it('a task reads the secret at /run/secrets/NAME and the config at its target, read-only, with their owners and modes', async () => {
    const created = await cli([
      'service', 'create', '--name', 'vault', '--replicas', '1',
      '--secret', 'db-password', '--secret', 'db-password,target=private,uid=1000,gid=1000,mode=0400',
      '--config', 'app-conf,target=/etc/app.conf',
      'demo/web:v1',
    ]);
    expect(created.code, created.stderr).toBe(0);
    const [row] = running(await ps('vault'));
    if (row === undefined) throw new Error('vault has no running task');
    task = row;
    const runc = (argv: string[]): string => execFileSync('runc', ['--root', hostOf(task.hostname).runcRoot, 'exec', task.containerId, ...argv], { encoding: 'utf8' });
    expect(runc(['cat', '/run/secrets/db-password'])).toBe(secretValue);
    expect(runc(['cat', '/run/secrets/private'])).toBe(secretValue);
    expect(runc(['cat', '/etc/app.conf'])).toBe(configValue);
    const listing = runc(['ls', '-ln', '/run/secrets/db-password', '/run/secrets/private', '/etc/app.conf']);
    expect(listing).toMatch(/^-r--r--r--\s+1\s+0\s+0\s.*\/run\/secrets\/db-password$/m);
    expect(listing).toMatch(/^-r--------\s+1\s+1000\s+1000\s.*\/run\/secrets\/private$/m);
    expect(listing).toMatch(/^-r--r--r--\s+1\s+0\s+0\s.*\/etc\/app.conf$/m);
    expect(() => execFileSync('runc', ['--root', hostOf(task.hostname).runcRoot, 'exec', '--user', '0:0', task.containerId, 'sh', '-c', 'echo x > /run/secrets/db-password'], { stdio: 'pipe' })).toThrow(/Read-only file system/);

    const inspected = await cli(['service', 'inspect', 'vault']);
    expect(inspected.code, inspected.stderr).toBe(0);
    expect(inspected.stdout).toContain('"secretName": "db-password"');
    outputs.push(await skiff(home, ['service', 'ps', 'vault', '--format', 'json']), await skiff(home, ['service', 'ls']), await skiff(home, ['node', 'ls']));
  });

  it('the data lives in a tmpfs on the task node only, and in no file under any host data dir', async () => {
    const filesDir = join(secretsDirOf(hostOf(task.hostname)), task.containerId);
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8').split('\n');
    expect(mountinfo.find((line) => line.split(' ')[4] === filesDir)).toMatch(/ - tmpfs /);
    for (const host of state.hosts) {
      if (host.name !== task.hostname) expect(await mountsUnder(secretsDirOf(host)), host.name).toEqual([]);
      // Managers included: their Raft log is encrypted at rest.
      expect(filesContaining(host.dataDir, secretValue, []), host.name).toEqual([]);
      expect(filesContaining(host.dataDir, configValue, []), host.name).toEqual([]);
    }
  });

  it('no API or CLI output of this file showed the secret', () => {
    expect(outputs.length).toBeGreaterThan(10);
    expectNoLeak(outputs.flatMap((result) => [result.stdout, result.stderr]));
  });

  it('secret rm is refused while a service uses it, and accepted once the service is gone and its tmpfs with it', async () => {
    const refused = await cli(['secret', 'rm', 'db-password']);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain('cannot remove secret "db-password": it is in use by service "vault"');
    const configRefused = await cli(['config', 'rm', 'app-conf']);
    expect(configRefused.stderr).toContain('cannot remove config "app-conf": it is in use by service "vault"');
    expect((await cli(['service', 'rm', 'vault'])).code).toBe(0);
    const secretsDir = secretsDirOf(hostOf(task.hostname));
    await waitFor('the task tmpfs to be unmounted', 60_000, async () => ((await mountsUnder(secretsDir)).length === 0 ? true : undefined));
    const removed = await cli(['secret', 'rm', 'db-password']);
    expect(removed.code, removed.stderr).toBe(0);
    expect((await cli(['config', 'rm', 'app-conf'])).code).toBe(0);
    expect(await skiffJson<unknown[]>(home, ['secret', 'ls'])).toEqual([]);
    expect(await skiffJson<unknown[]>(home, ['config', 'ls'])).toEqual([]);
  });

  it('lab down leaves nothing behind', async () => {
    await labDown(lab);
    expect(await leftovers(lab)).toEqual([]);
  });
});
