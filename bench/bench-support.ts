/**
 * What every benchmark in bench/ shares: timed child processes, polling with a deadline, a
 * cleanup stack that also runs on SIGINT/SIGTERM, and progress lines on stderr (stdout carries
 * only the one JSON result line).
 */
import { spawn, type StdioOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';

/** Output a timed command may print before the rest is dropped (podman prints an id, runc nothing). */
export const MAX_CAPTURED_OUTPUT_BYTES = 1024 * 1024;
/** Deadline of one timed command unless the caller says otherwise. */
export const DEFAULT_TIMED_COMMAND_TIMEOUT_MS = 60_000;
/** Exit code for a run stopped by SIGINT / SIGTERM (128 + signal number). */
const SIGNAL_EXIT_CODES: Record<'SIGINT' | 'SIGTERM', number> = { SIGINT: 130, SIGTERM: 143 };
/**
 * After a signal, how long the benchmark may take to reach its next checkpoint and clean up on
 * its own (so nothing is created behind the cleanup's back) before the cleanup is forced.
 */
export const SIGNAL_GRACE_MS = 15_000;

/** The signal that asked the benchmark to stop, if any; checkpoints throw once it is set. */
let stopSignal: NodeJS.Signals | undefined;

/** A checkpoint: throws once SIGINT/SIGTERM arrived, so the caller's finally cleans up. */
export function checkNotStopping(): void {
  if (stopSignal !== undefined) throw new Error(`cannot continue: ${stopSignal} received`);
}

/** A progress line on stderr. */
export function progress(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

/** `length` random characters from [a-z0-9]: valid in lab names, runc ids and podman paths. */
export function randomName(length: number): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(length)].map((byte) => alphabet[byte % alphabet.length] ?? 'a').join('');
}

/** A child process's outcome and how long it took from spawn to exit. */
export interface TimedResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** From just before spawn() to the child's 'exit' event, in milliseconds. */
  elapsedMs: number;
}

export interface TimedOptions {
  timeoutMs?: number;
  env?: NodeJS.ProcessEnv;
  /** Overrides the default piped stdio, e.g. files for `runc run -d`. */
  stdio?: StdioOptions;
  /** Called right after spawn with the start time (performance.now()) so callers can poll in parallel. */
  onSpawn?: (startedAt: number) => void;
}

/**
 * Runs `file args...` and measures wall time from spawn to exit. Never rejects for a non-zero
 * exit (the caller judges); rejects on spawn failure or when the deadline passes (after SIGKILL).
 */
export function timedRun(file: string, args: readonly string[], options: TimedOptions = {}): Promise<TimedResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMED_COMMAND_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const startedAt = performance.now();
    const child = spawn(file, args, { stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'], env: options.env ?? process.env });
    options.onSpawn?.(startedAt);
    let stdout = '';
    let stderr = '';
    const append = (current: string, chunk: Buffer): string => (current.length >= MAX_CAPTURED_OUTPUT_BYTES ? current : current + chunk.toString());
    child.stdout?.on('data', (chunk: Buffer) => (stdout = append(stdout, chunk)));
    child.stderr?.on('data', (chunk: Buffer) => (stderr = append(stderr, chunk)));
    let exited: { code: number; at: number } | undefined;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cannot run ${file} ${args.join(' ')}: no exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    // 'exit' is the moment we time; 'close' (all stdio drained) is when the output is complete.
    child.on('exit', (code, signal) => {
      exited = { code: code ?? (signal === null ? 255 : 128), at: performance.now() };
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      const end = exited ?? { code: code ?? 255, at: performance.now() };
      resolve({ exitCode: end.code, stdout, stderr, elapsedMs: end.at - startedAt });
    });
  });
}

/** Runs a command and throws "cannot <action>: ..." unless it exits 0; returns its stdout. */
export async function runOrThrow(action: string, file: string, args: readonly string[], options: TimedOptions = {}): Promise<string> {
  const result = await timedRun(file, args, options);
  if (result.exitCode !== 0) {
    const reason = result.stderr.trim().split('\n').slice(-3).join(' | ') || `exit code ${result.exitCode}`;
    throw new Error(`cannot ${action}: ${reason}`);
  }
  return result.stdout;
}

/**
 * Polls `condition` every `intervalMs` until it returns a value other than undefined, and
 * returns that value; throws "cannot <what>: not within N ms" once `timeoutMs` has passed.
 */
export async function pollUntil<T>(what: string, condition: () => Promise<T | undefined>, options: { intervalMs: number; timeoutMs: number }): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  for (;;) {
    checkNotStopping();
    const value = await condition();
    if (value !== undefined) return value;
    if (performance.now() >= deadline) throw new Error(`cannot ${what}: not within ${options.timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}

/**
 * A stack of cleanup steps run last-in first-out, once, on the normal path (`runAll` in a
 * finally) or on SIGINT / SIGTERM. A failing step is reported and the others still run.
 */
export class CleanupStack {
  private readonly steps: Array<{ label: string; step: () => Promise<void> }> = [];
  private running: Promise<void> | undefined;

  /** Registers a step; it runs before every step pushed earlier. */
  push(label: string, step: () => Promise<void>): void {
    this.steps.push({ label, step });
  }

  /** Runs every step once; later calls wait for the same run. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      for (let step = this.steps.pop(); step !== undefined; step = this.steps.pop()) {
        try {
          await step.step();
        } catch (error) {
          progress(`cleanup "${step.label}" failed: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    })();
    return this.running;
  }

  /**
   * On SIGINT / SIGTERM: checkpoints start throwing, so the benchmark unwinds into its finally and
   * cleans up; the exit code becomes 128 + signal. If it has not finished within SIGNAL_GRACE_MS,
   * or a second signal arrives, the cleanup runs at once and the process exits.
   */
  installSignalHandlers(): void {
    const force = (signal: 'SIGINT' | 'SIGTERM'): void => {
      void this.runAll().finally(() => process.exit(SIGNAL_EXIT_CODES[signal]));
    };
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.on(signal, () => {
        if (stopSignal !== undefined) return force(signal);
        stopSignal = signal;
        process.exitCode = SIGNAL_EXIT_CODES[signal];
        progress(`${signal}: stopping at the next checkpoint, then cleaning up (forced after ${SIGNAL_GRACE_MS} ms or on a second signal)`);
        setTimeout(() => force(signal), SIGNAL_GRACE_MS).unref();
      });
    }
  }
}
