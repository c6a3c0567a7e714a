/**
 * Fake processes for FakeRuntime.execHandler: a test decides their output and exit code, or
 * keeps them running until killed, and sees every signal sent.
 */
import { PassThrough } from 'node:stream';
import type { ExecProcess } from '../../runtime/types.js';

export interface FakeExecProcess extends ExecProcess {
  /** Signals received through kill(), in order. */
  readonly signals: NodeJS.Signals[];
  /** Ends the process with `exitCode` after writing `stdout` and `stderr`. */
  finish(exitCode: number, stdout?: string, stderr?: string): void;
}

/** A process that runs until finish() or kill() (kill ends it with 128+9 for SIGKILL). */
export function fakeExecProcess(): FakeExecProcess {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  const signals: NodeJS.Signals[] = [];
  let resolveExit: (code: number) => void = () => undefined;
  let done = false;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  const finish = (exitCode: number, out = '', err = ''): void => {
    if (done) return;
    done = true;
    if (out !== '') stdout.write(out);
    if (err !== '') stderr.write(err);
    stdout.end();
    stderr.end();
    // Output is delivered before the exit, as with a real process's streams.
    setImmediate(() => resolveExit(exitCode));
  };
  return {
    stdout,
    stderr,
    stdin: undefined,
    exited,
    signals,
    finish,
    kill(signal: NodeJS.Signals = 'SIGKILL') {
      signals.push(signal);
      if (signal === 'SIGKILL') finish(137);
    },
  };
}

/** A process that has already ended with `exitCode` and `output` on stdout. */
export function finishedExecProcess(exitCode: number, output = ''): FakeExecProcess {
  const process = fakeExecProcess();
  process.finish(exitCode, output);
  return process;
}
