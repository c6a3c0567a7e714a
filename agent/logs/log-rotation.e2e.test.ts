/**
 * Rotation with the real container monitor: a container prints numbered lines; the rotator moves
 * its log aside and tells conmon (control FIFO) to reopen the path. Every line is then found exactly
 * once and in order across `<log>.1` and `<log>`, and the reader reads them back as one sequence.
 */
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../common/log.js';
import { runCommand } from '../runtime/command.js';
import { waitFor } from '../runtime/fs-util.js';
import { cleanupRuntimeState, createRuntime, type Runtime } from '../runtime/index.js';
import { RuntimePaths } from '../runtime/paths.js';
import { mountsUnder } from '../runtime/rootfs.js';
import { makeScratch, type Scratch } from '../runtime/testing/busybox-layer.js';
import { readLog } from './log-reader.js';
import { LogRotator } from './log-rotation.js';

let scratch: Scratch;
let runtime: Runtime;

beforeAll(async () => {
  scratch = await makeScratch('logrot');
  runtime = await createRuntime({
    stateDir: scratch.stateDir,
    runcRoot: scratch.runcRoot,
    cgroupParent: scratch.cgroupParent,
    bridgeName: scratch.bridgeName,
    bridgeSubnet: scratch.bridgeSubnet,
    secretsDir: path.join(scratch.baseDir, 'secrets'),
  });
});

afterAll(async () => {
  await runtime?.close();
  if (scratch === undefined) return;
  await cleanupRuntimeState({ stateDir: scratch.stateDir, runcRoot: scratch.runcRoot, cgroupParent: scratch.cgroupParent, secretsDir: path.join(scratch.baseDir, 'secrets') }).catch((error: unknown) => console.error(error));
  await runCommand('ip', ['link', 'del', 'dev', scratch.bridgeName]);
  if ((await mountsUnder(scratch.baseDir)).length === 0) await fs.rm(scratch.baseDir, { recursive: true, force: true });
});

const lineNumbers = async (file: string): Promise<number[]> =>
  [...(await fs.readFile(file, 'utf8').catch(() => '')).matchAll(/ stdout F line (\d+)\n/g)].map((match) => Number(match[1]));

describe('log rotation with conmon', () => {
  it('keeps every line, in order, across the rotated file and the new one', async () => {
    const id = `rot${Date.now().toString(36)}`;
    const info = await runtime.run({
      containerId: id,
      hostname: id,
      layerDirs: [scratch.layerDir],
      // 300 lines quickly (about 20 KiB), then more slowly: the rotation lands while it writes.
      argv: ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo "line $i"; i=$((i+1)); done; while [ $i -lt 400 ]; do echo "line $i"; i=$((i+1)); sleep 0.01; done; sleep 1000'],
      env: [],
      user: '',
      workingDir: '',
      memoryLimitBytes: 0,
      nanoCpus: 0,
      pidsLimit: 0,
      labels: {},
      files: [],
    });
    const paths = new RuntimePaths(scratch.stateDir);
    const rotator = new LogRotator({
      maxBytes: 4096,
      maxFiles: 1,
      containers: async () => [{ containerId: id, logPath: info.logPath, ctlFifo: path.join(paths.bundleDir(id), 'ctl') }],
      log: createLogger({}, () => undefined),
    });
    expect(await waitFor(async () => (await fs.stat(info.logPath).then((stat) => stat.size, () => 0)) > 4096, 10_000, 10)).toBe(true);
    await rotator.check();
    expect(await fs.stat(`${info.logPath}.1`).then(() => true, () => false)).toBe(true);
    // conmon reopened the path: new lines land in a new file there.
    expect(await waitFor(async () => (await lineNumbers(info.logPath)).includes(399), 15_000, 20)).toBe(true);
    const rotated = await lineNumbers(`${info.logPath}.1`);
    const current = await lineNumbers(info.logPath);
    expect(rotated.length).toBeGreaterThan(0);
    expect(current.length).toBeGreaterThan(0);
    expect([...rotated, ...current]).toEqual(Array.from({ length: 400 }, (_, index) => index));
    const read: string[] = [];
    for await (const entry of readLog(info.logPath, { tail: 3, sinceMs: 0, follow: false, signal: new AbortController().signal })) read.push(entry.line.toString());
    expect(read).toEqual(['line 397', 'line 398', 'line 399']);
    await runtime.remove(id);
    expect(await fs.stat(`${info.logPath}.1`).then(() => true, () => false)).toBe(false);
  });
});
