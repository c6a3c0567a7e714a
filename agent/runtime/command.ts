/**
 * Runs host commands (runc, mount, ip, nsenter) with a deadline and bounded output. Never throws
 * for a non-zero exit: callers decide what a failure means; only a spawn failure or the deadline
 * reject.
 */
import { spawn } from 'node:child_process';

/** Output beyond this is dropped; runc and ip never legitimately print more. */
export const MAX_COMMAND_OUTPUT_BYTES = 4 * 1024 * 1024;
/** Default deadline for one host command. */
export const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;

export interface CommandResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface CommandOptions {
  timeoutMs?: number;
  input?: string;
  cwd?: string;
}

/** Runs `file args...`; resolves with its exit code and output (exit code 128+n for signal n). */
export function runCommand(file: string, args: readonly string[], options: CommandOptions = {}): Promise<CommandResult> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_COMMAND_TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, {
      stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    const stdout = new BoundedBuffer();
    const stderr = new BoundedBuffer();
    child.stdout?.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => stderr.push(chunk));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cannot run ${file} ${args.join(' ')}: no exit within ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${file}: ${error.message}`));
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const exitCode = code ?? (signal === null ? 255 : 128 + signalNumber(signal));
      resolve({ exitCode, stdout: stdout.text(), stderr: stderr.text() });
    });
    if (options.input !== undefined && child.stdin !== null) {
      child.stdin.on('error', () => undefined); // the command may exit before reading everything
      child.stdin.end(options.input);
    }
  });
}

/** Runs a command and throws "cannot <action>: <stderr>" unless it exits 0. Returns stdout. */
export async function runChecked(action: string, file: string, args: readonly string[], options: CommandOptions = {}): Promise<string> {
  const result = await runCommand(file, args, options);
  if (result.exitCode !== 0) {
    throw new Error(`cannot ${action}: ${firstLine(result.stderr) || `${file} exited with ${result.exitCode}`}`);
  }
  return result.stdout;
}

/** The first non-empty line of a command's stderr, trimmed. */
export function firstLine(text: string): string {
  return text.split('\n').map((line) => line.trim()).find((line) => line.length > 0) ?? '';
}

const SIGNAL_NUMBERS: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGABRT: 6, SIGKILL: 9, SIGSEGV: 11, SIGPIPE: 13, SIGTERM: 15 };

function signalNumber(signal: string): number {
  return SIGNAL_NUMBERS[signal] ?? 127;
}

class BoundedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  push(chunk: Buffer): void {
    if (this.size >= MAX_COMMAND_OUTPUT_BYTES) return;
    const room = MAX_COMMAND_OUTPUT_BYTES - this.size;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
