import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from './command.js';
import { readTextIfExists, waitFor } from './fs-util.js';
import { cleanupRuntimeState, createRuntime, type ContainerRequest, type Runtime } from './index.js';
import { mountsUnder } from './rootfs.js';
import { makeScratch, type Scratch } from './testing/busybox-layer.js';

const CONDITION_TIMEOUT_MS = 10_000;
const POLL_MS = 10;

let scratch: Scratch;
let runtime: Runtime | undefined;

function request(containerId: string, argv: string[]): ContainerRequest {
  return {
    containerId, hostname: containerId, layerDirs: [scratch.layerDir], argv, env: [], user: '', workingDir: '',
    memoryLimitBytes: 0, nanoCpus: 0, pidsLimit: 0, labels: {}, files: [],
  };
}

beforeAll(async () => {
  scratch = await makeScratch('seccomp-e2e');
  runtime = await createRuntime({
    stateDir: scratch.stateDir,
    runcRoot: scratch.runcRoot,
    cgroupParent: scratch.cgroupParent,
    bridgeName: scratch.bridgeName,
    bridgeSubnet: scratch.bridgeSubnet,
    secretsDir: path.join(scratch.baseDir, 'secrets'),
  }, { logger: { info: () => undefined, warn: (message, fields) => console.warn(message, fields) } });
});

afterAll(async () => {
  await runtime?.close();
  if (scratch === undefined) return;
  await cleanupRuntimeState({ stateDir: scratch.stateDir, runcRoot: scratch.runcRoot, cgroupParent: scratch.cgroupParent, secretsDir: path.join(scratch.baseDir, 'secrets') }).catch((error: unknown) => console.error(error));
  await runCommand('ip', ['link', 'del', 'dev', scratch.bridgeName]);
  if ((await mountsUnder(scratch.baseDir)).length === 0) await fs.rm(scratch.baseDir, { recursive: true, force: true });
});

describe('seccomp', () => {
  it('container runs under Docker default seccomp profile and gets EPERM for a blocked syscall', async () => {
    // Creating a user namespace needs no capability, so without a filter `unshare -U` succeeds
    // even with Docker's reduced capability set (the host check below proves the kernel allows
    // it). Docker's profile allows unshare(2) only with CAP_SYS_ADMIN, so inside the container
    // the call must fail with EPERM: that failure can only come from seccomp. `mount` would not
    // prove anything, since the missing CAP_SYS_ADMIN refuses it anyway.
    const onHost = await runCommand('/bin/busybox', ['unshare', '-U', 'true']);
    expect(onHost.exitCode, `host unshare -U: ${onHost.stderr}`).toBe(0);

    const info = await runtime!.run(request('filtered', [
      'sh', '-c', 'busybox unshare -U true 2>&1; echo "unshare exit=$?"; echo "uname=$(uname -s)"; exec sleep 1000',
    ]));
    const status = (await readTextIfExists(`/proc/${info.pid}/status`)) ?? '';
    expect(status).toMatch(/^Seccomp:\s+2$/m); // SECCOMP_MODE_FILTER
    const log = async (): Promise<string> => (await readTextIfExists(info.logPath)) ?? '';
    expect(await waitFor(async () => (await log()).includes('uname='), CONDITION_TIMEOUT_MS, POLL_MS), await log()).toBe(true);
    const text = await log();
    expect(text).toContain('Operation not permitted');
    expect(text).toMatch(/unshare exit=[1-9]/);
    expect(text).toContain('uname=Linux'); // ordinary syscalls still work
    await runtime!.stop('filtered', 100);
    await runtime!.remove('filtered');
  });
});
