/**
 * Starts a `created` runc container without a `runc start` process (one process spawn less on
 * every task start; issue 7's start latency). `runc start` does exactly this for a container
 * without a notify socket (runc 1.0–1.1, libcontainer `linuxContainer.exec`): the container's
 * `runc init` is blocked opening `<root>/<id>/exec.fifo` for writing; the reader's open lets it
 * write one byte and exec the user's process, whose exec closes the fifo (it is close-on-exec),
 * so the reader sees the byte, then EOF. Deleting the fifo then marks the container running in
 * runc's own eyes (runc derives `created` from the fifo's presence).
 *
 * The fifo is opened non-blocking and read through a libuv pipe, so no thread ever blocks on it:
 * if the init died before writing (no writer ever comes), the wait ends when the init's pid is gone
 * or at the deadline. Returns 'unsupported' when there is no fifo to read (another runc layout,
 * or a container that is not `created`): the caller then runs `runc start`, which says why.
 */
import { close, constants, open, promises as fs } from 'node:fs';
import { Socket } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { isErrno, isProcessAlive } from './fs-util.js';

export const EXEC_FIFO = 'exec.fifo';
/** How often the init's pid is checked while the fifo stays silent. */
const INIT_CHECK_INTERVAL_MS = 100;

export type FifoStartResult = { ok: true } | { ok: false; message: string } | 'unsupported';

/** Releases the container's init through runc's exec fifo; `initPid` is its host pid. */
export async function startThroughExecFifo(runcRoot: string, containerId: string, initPid: number, timeoutMs: number): Promise<FifoStartResult> {
  const fifoPath = path.join(runcRoot, containerId, EXEC_FIFO);
  let fd: number;
  try {
    const stat = await fs.lstat(fifoPath);
    if (!stat.isFIFO()) return 'unsupported';
    fd = await promisify(open)(fifoPath, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    if (isErrno(error, 'ENOENT')) return 'unsupported';
    throw error;
  }
  const received = await readUntilEof(fd, initPid, timeoutMs);
  if (received === 0) return { ok: false, message: `cannot start container ${containerId}: its init exited before it was started` };
  await fs.rm(fifoPath, { force: true });
  return { ok: true };
}

/** Bytes read from the fifo until its writer is gone (EOF), or 0 when the init died silent. Closes `fd`. */
function readUntilEof(fd: number, initPid: number, timeoutMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let socket: Socket;
    try {
      socket = new Socket({ fd, readable: true, writable: false, allowHalfOpen: true }); // owns fd from here
    } catch (error) {
      close(fd, () => undefined);
      reject(error instanceof Error ? error : new Error(String(error)));
      return;
    }
    let received = 0;
    let settled = false;
    const deadline = Date.now() + timeoutMs;
    const finish = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      socket.removeAllListeners('data');
      socket.destroy();
      outcome();
    };
    const timer = setInterval(() => {
      if (received > 0) return; // the init wrote: EOF follows its exec
      if (!isProcessAlive(initPid)) finish(() => resolve(0));
      else if (Date.now() >= deadline) finish(() => reject(new Error(`the container's init did not start within ${timeoutMs} ms`)));
    }, INIT_CHECK_INTERVAL_MS);
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('end', () => finish(() => resolve(received)));
    socket.on('error', (error) => finish(() => reject(error)));
  });
}
