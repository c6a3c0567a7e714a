/**
 * One run of a health probe: a command inside the container (runc exec), or an HTTP GET or a TCP
 * connect from the agent, which lives in the host's network namespace, to the task's address on
 * the host bridge. Each probe ends when its AbortSignal fires (the monitor's timeout): a command
 * is killed, a connection destroyed. Output is kept up to MAX_HEALTH_OUTPUT_BYTES, as Docker does.
 */
import http from 'node:http';
import net from 'node:net';
import type { Runtime } from '../runtime/types.js';
import type { HealthProbeSpec } from './health-config.js';

/** Longest probe output kept (Docker's maxOutputLen). */
export const MAX_HEALTH_OUTPUT_BYTES = 4096;

export interface ProbeResult {
  healthy: boolean;
  /** What the probe said: the command's output, or the HTTP status or connection error. */
  output: string;
}

/** Runs one probe; resolves (never rejects) once it ended or was aborted. */
export type Probe = (signal: AbortSignal) => Promise<ProbeResult>;

export interface ProbeTarget {
  runtime: Runtime;
  containerId: string;
  /** The task's address on the host bridge, read at each probe. */
  address: () => string | undefined;
}

/** Keeps the first `limit` bytes written. */
class OutputBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;

  constructor(private readonly limit: number) {}

  write(chunk: Buffer | string): void {
    if (this.size >= this.limit) return;
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    const kept = bytes.subarray(0, this.limit - this.size);
    this.chunks.push(kept);
    this.size += kept.length;
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}

/** Cuts `text` to at most MAX_HEALTH_OUTPUT_BYTES of UTF-8. */
export function truncateOutput(text: string): string {
  const bytes = Buffer.from(text);
  return bytes.length <= MAX_HEALTH_OUTPUT_BYTES ? text : bytes.subarray(0, MAX_HEALTH_OUTPUT_BYTES).toString('utf8');
}

const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

/** Runs argv in the container; healthy on exit 0. Aborting kills it (SIGKILL). */
export function commandProbe(target: ProbeTarget, argv: string[]): Probe {
  return async (signal) => {
    let started;
    try {
      started = await target.runtime.exec(target.containerId, { argv, env: [], user: '', workingDir: '', stdin: false });
    } catch (error) {
      return { healthy: false, output: `cannot run health check: ${messageOf(error)}` };
    }
    const process = started;
    const output = new OutputBuffer(MAX_HEALTH_OUTPUT_BYTES);
    process.stdout.on('data', (chunk: Buffer) => output.write(chunk));
    process.stderr.on('data', (chunk: Buffer) => output.write(chunk));
    const kill = (): void => process.kill('SIGKILL');
    if (signal.aborted) kill();
    signal.addEventListener('abort', kill, { once: true });
    try {
      const exitCode = await process.exited;
      const text = output.text();
      return { healthy: exitCode === 0, output: text !== '' || exitCode === 0 ? text : `health check exited with code ${exitCode}` };
    } catch (error) {
      return { healthy: false, output: `health check failed: ${messageOf(error)}` };
    } finally {
      signal.removeEventListener('abort', kill);
    }
  };
}

const hostForUrl = (address: string): string => (address.includes(':') ? `[${address}]` : address);

/** GET http://<address>:<port><path>; healthy on 2xx and 3xx (redirects are not followed). */
export function httpProbe(target: Pick<ProbeTarget, 'address'>, port: number, path: string): Probe {
  return (signal) =>
    new Promise((resolve) => {
      const address = target.address();
      if (address === undefined) {
        resolve({ healthy: false, output: 'cannot probe over HTTP: the task has no address' });
        return;
      }
      const url = `http://${hostForUrl(address)}:${port}${path}`;
      const request = http.get({ host: address, port, path, signal, agent: false, headers: { 'user-agent': 'skiff-health-check' } }, (response) => {
        const status = response.statusCode ?? 0;
        response.destroy();
        resolve({ healthy: status >= 200 && status < 400, output: `GET ${url}: ${status} ${response.statusMessage ?? ''}`.trimEnd() });
      });
      request.on('error', (error) => resolve({ healthy: false, output: `GET ${url}: ${messageOf(error)}` }));
    });
}

/** Opens a TCP connection to <address>:<port>; healthy once it is established. */
export function tcpProbe(target: Pick<ProbeTarget, 'address'>, port: number): Probe {
  return (signal) =>
    new Promise((resolve) => {
      const address = target.address();
      if (address === undefined) {
        resolve({ healthy: false, output: 'cannot probe over TCP: the task has no address' });
        return;
      }
      const endpoint = `${hostForUrl(address)}:${port}`;
      const socket = net.connect({ host: address, port, signal });
      socket.once('connect', () => {
        socket.destroy();
        resolve({ healthy: true, output: `connected to ${endpoint}` });
      });
      socket.once('error', (error) => resolve({ healthy: false, output: `cannot connect to ${endpoint}: ${messageOf(error)}` }));
    });
}

/** The probe function for a resolved probe spec. */
export function probeFor(spec: HealthProbeSpec, target: ProbeTarget): Probe {
  switch (spec.kind) {
    case 'exec':
      return commandProbe(target, spec.argv);
    case 'http':
      return httpProbe(target, spec.port, spec.path);
    case 'tcp':
      return tcpProbe(target, spec.port);
    default: {
      const exhaustive: never = spec;
      throw new Error(`unknown probe ${String(exhaustive)}`);
    }
  }
}
