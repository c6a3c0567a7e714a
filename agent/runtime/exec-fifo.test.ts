import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { EXEC_FIFO, startThroughExecFifo } from './exec-fifo.js';

// A stand-in for `runc init`: a shell blocked opening the fifo for writing, which writes one byte
// and then execs (closing the fifo), as runc's init does before running the user's process.
describe('startThroughExecFifo', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(path.join(tmpdir(), 'exec-fifo-'));
    mkdirSync(path.join(root, 'c1'));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const fifoPath = (): string => path.join(root, 'c1', EXEC_FIFO);

  it('releases a waiting writer, reads to EOF and removes the fifo (runc then reports running)', async () => {
    execFileSync('mkfifo', [fifoPath()]);
    const marker = path.join(root, 'exec-ran');
    const init = spawn('sh', ['-c', `printf 0 > ${fifoPath()}; exec touch ${marker}`], { stdio: 'ignore' });
    const exited = new Promise((resolve) => init.on('exit', resolve));
    expect(await startThroughExecFifo(root, 'c1', init.pid ?? 0, 10_000)).toEqual({ ok: true });
    expect(existsSync(fifoPath())).toBe(false);
    await exited;
    expect(existsSync(marker)).toBe(true);
  });

  it('reports failure when the init is gone without writing', async () => {
    execFileSync('mkfifo', [fifoPath()]);
    const init = spawn('true', { stdio: 'ignore' });
    await new Promise((resolve) => init.on('exit', resolve));
    const result = await startThroughExecFifo(root, 'c1', init.pid ?? 0, 10_000);
    expect(result).toEqual({ ok: false, message: 'cannot start container c1: its init exited before it was started' });
  });

  it('is unsupported without a fifo (no container, or not runc\'s layout), so the caller runs `runc start`', async () => {
    expect(await startThroughExecFifo(root, 'c1', process.pid, 10_000)).toBe('unsupported');
    writeFileSync(fifoPath(), '');
    expect(await startThroughExecFifo(root, 'c1', process.pid, 10_000)).toBe('unsupported');
  });
});
