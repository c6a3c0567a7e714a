/**
 * Secret and config files with real runc: a per-container tmpfs outside the state dir, files
 * read-only at their paths with their owners and modes, nothing on disk, unmounted on remove,
 * kept for an adopted container and cleaned up for one that is gone.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand, runChecked } from './command.js';
import { mountTypeAt } from './container-files.js';
import { pathExists, readTextIfExists } from './fs-util.js';
import { cleanupRuntimeState, createRuntime, type ContainerFile, type ContainerRequest, type Runtime } from './index.js';
import { mountsUnder } from './rootfs.js';
import { makeScratch, type Scratch } from './testing/busybox-layer.js';

let scratch: Scratch;
let secretsDir: string;
const runtimes: Runtime[] = [];
const secretValue = `s3cr3t-${randomBytes(16).toString('hex')}`;
const configValue = `listen=${randomBytes(8).toString('hex')}\n`;

async function newRuntime(): Promise<Runtime> {
  const runtime = await createRuntime({
    stateDir: scratch.stateDir,
    runcRoot: scratch.runcRoot,
    cgroupParent: scratch.cgroupParent,
    bridgeName: scratch.bridgeName,
    bridgeSubnet: scratch.bridgeSubnet,
    secretsDir,
  });
  runtimes.push(runtime);
  return runtime;
}

function request(containerId: string, files: ContainerFile[], overrides: Partial<ContainerRequest> = {}): ContainerRequest {
  return {
    containerId,
    hostname: containerId,
    layerDirs: [scratch.layerDir],
    argv: ['sleep', '1000'],
    env: [],
    user: 'app',
    workingDir: '',
    memoryLimitBytes: 0,
    nanoCpus: 0,
    pidsLimit: 0,
    labels: {},
    files,
    ...overrides,
  };
}

const encode = (text: string): Uint8Array => new TextEncoder().encode(text);
const files: ContainerFile[] = [
  { containerPath: '/run/secrets/db', data: encode(secretValue), uid: 0, gid: 0, mode: 0o444 },
  { containerPath: '/run/secrets/private', data: encode(secretValue), uid: 1000, gid: 2000, mode: 0o400 },
  { containerPath: '/etc/app/app.conf', data: encode(configValue), uid: 0, gid: 0, mode: 0o644 },
];

async function exec(containerId: string, argv: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  return runCommand('runc', ['--root', scratch.runcRoot, 'exec', '--user', '1000:1000', containerId, ...argv]);
}

/** Every regular file under `dir` whose content contains `needle`. */
async function filesContaining(dir: string, needle: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await fs.readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (!entry.isFile()) continue;
    const file = path.join(entry.parentPath, entry.name);
    if ((await fs.readFile(file).catch(() => Buffer.alloc(0))).includes(needle)) found.push(file);
  }
  return found;
}

beforeAll(async () => {
  scratch = await makeScratch('files-e2e');
  secretsDir = path.join(scratch.baseDir, 'run', 'secrets');
});

afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  if (scratch === undefined) return;
  await cleanupRuntimeState({ stateDir: scratch.stateDir, runcRoot: scratch.runcRoot, cgroupParent: scratch.cgroupParent, secretsDir }).catch((error: unknown) => console.error(error));
  await runCommand('ip', ['link', 'del', 'dev', scratch.bridgeName]);
  if ((await mountsUnder(scratch.baseDir)).length === 0) await fs.rm(scratch.baseDir, { recursive: true, force: true });
});

describe('container files', () => {
  let first: Runtime;

  it('container files are readable read-only at their paths with their owners and modes, from a tmpfs, never on disk', async () => {
    first = await newRuntime();
    await first.run(request('withfiles', files));
    expect(mountTypeAt((await readTextIfExists('/proc/self/mountinfo')) ?? '', path.join(secretsDir, 'withfiles'))).toBe('tmpfs');
    const read = await exec('withfiles', ['cat', '/run/secrets/db']);
    expect(read, read.stderr).toMatchObject({ exitCode: 0, stdout: secretValue });
    expect((await exec('withfiles', ['cat', '/etc/app/app.conf'])).stdout).toBe(configValue);
    // 0400 owned by 1000: readable by uid 1000 (exec runs as 1000:1000).
    expect((await exec('withfiles', ['cat', '/run/secrets/private'])).stdout).toBe(secretValue);
    const listing = (await exec('withfiles', ['ls', '-ln', '/run/secrets/db', '/run/secrets/private', '/etc/app/app.conf'])).stdout;
    expect(listing).toMatch(/^-r--r--r--\s+1\s+0\s+0\s+\d+ .*\/run\/secrets\/db$/m);
    expect(listing).toMatch(/^-r--------\s+1\s+1000\s+2000\s+\d+ .*\/run\/secrets\/private$/m);
    expect(listing).toMatch(/^-rw-r--r--\s+1\s+0\s+0\s+\d+ .*\/etc\/app\/app.conf$/m);
    // Read-only even for root inside the container.
    const write = await runCommand('runc', ['--root', scratch.runcRoot, 'exec', '--user', '0:0', 'withfiles', 'sh', '-c', 'echo x > /etc/app/app.conf']);
    expect(write.exitCode).not.toBe(0);
    expect(write.stderr).toMatch(/Read-only file system/);
    expect(await filesContaining(scratch.stateDir, secretValue)).toEqual([]);
    expect(await filesContaining(scratch.stateDir, configValue)).toEqual([]);
  });

  it('container files stay mounted for a container a new runtime adopts, and go with its removal', async () => {
    const second = await newRuntime();
    expect((await second.list()).find((info) => info.containerId === 'withfiles')?.status).toBe('running');
    expect(await mountsUnder(path.join(secretsDir, 'withfiles'))).toEqual([path.join(secretsDir, 'withfiles')]);
    expect((await exec('withfiles', ['cat', '/run/secrets/db'])).stdout).toBe(secretValue);
    await second.remove('withfiles');
    expect(await mountsUnder(path.join(secretsDir, 'withfiles'))).toEqual([]);
    expect(await pathExists(path.join(secretsDir, 'withfiles'))).toBe(false);
  });

  it('container files of a failed start are unmounted with the rest of it', async () => {
    await expect(first.run(request('broken', files, { argv: ['/nonexistent'] }))).rejects.toMatchObject({ code: 'start_failed' });
    expect(await mountsUnder(path.join(secretsDir, 'broken'))).toEqual([]);
    expect(await pathExists(path.join(secretsDir, 'broken'))).toBe(false);
  });

  it('container files whose container is gone are removed when a runtime starts', async () => {
    const ghost = path.join(secretsDir, 'ghost');
    await fs.mkdir(ghost, { recursive: true });
    await runChecked('mount a tmpfs', 'mount', ['-t', 'tmpfs', 'tmpfs', ghost]);
    await first.run(request('kept', files.slice(0, 1)));
    await newRuntime();
    expect(await mountsUnder(secretsDir)).toEqual([path.join(secretsDir, 'kept')]);
    expect(await pathExists(ghost)).toBe(false);
    await first.remove('kept');
    expect(await mountsUnder(secretsDir)).toEqual([]);
  });
});
