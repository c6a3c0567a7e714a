/**
 * Answers an exec request: `runc exec` in the task's container, its stdout and stderr sent as
 * frames (read only as fast as the manager takes them), stdin from the manager's frames, and
 * the exit code last. When the manager ends the call first, the process is killed.
 */
import type { ExecInput, ExecRequest } from '../../proto/skiff/v1/attach.js';
import type { Runtime } from '../runtime/types.js';
import type { FrameSink } from './frame-sink.js';

export interface ExecSession {
  /** Input from the manager (stdin bytes or its end); resolves once the process took it. */
  input(input: ExecInput): Promise<void>;
  /** Resolves when the exit code was sent (or the call was cancelled). */
  done: Promise<void>;
}

export async function startExecSession(request: ExecRequest, runtime: Pick<Runtime, 'exec' | 'inspect'>, sink: FrameSink, signal: AbortSignal): Promise<ExecSession> {
  const container = await runtime.inspect(request.task);
  if (container === undefined || container.status !== 'running') throw new Error(`task ${request.task} has no running container on this node`);
  const process = await runtime.exec(request.task, { argv: request.argv, env: request.env, user: request.user, workingDir: request.workdir, stdin: request.attachStdin });
  const kill = (): void => process.kill('SIGKILL');
  signal.addEventListener('abort', kill, { once: true });
  const pump = async (stream: NodeJS.ReadableStream, name: 'stdout' | 'stderr'): Promise<void> => {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      await sink.send({ $case: 'execOutput', value: { output: name === 'stdout' ? { $case: 'stdout', value: chunk } : { $case: 'stderr', value: chunk } } });
    }
  };
  const done = (async () => {
    try {
      await Promise.all([pump(process.stdout, 'stdout'), pump(process.stderr, 'stderr')]);
      const exitCode = await process.exited;
      await sink.send({ $case: 'execOutput', value: { output: { $case: 'exitCode', value: exitCode } } });
    } finally {
      signal.removeEventListener('abort', kill);
    }
  })();
  const stdin = process.stdin;
  // Input after the process exited (EPIPE) is dropped, not a crash.
  stdin?.on('error', () => undefined);
  return {
    done,
    input: async (input) => {
      if (stdin === undefined) return;
      if (input.input?.$case === 'stdinClosed') stdin.end();
      else if (input.input?.$case === 'stdin' && !stdin.write(input.input.value)) await new Promise<void>((resolve) => stdin.once('drain', resolve));
    },
  };
}
