/**
 * An in-memory Runtime for executor tests. It records every call in order, hands out fake pids
 * and bridge addresses, and lets a test make containers exit (as the exit watcher would) or seed
 * containers that "survived" an agent restart. stop() makes the container exit with 143, as a
 * SIGTERM would, and announces that exit to the watchers like the real runtime.
 */
import type { ContainerInfo, ContainerRequest, ExecOptions, ExecProcess, ExitListener, Runtime } from '../../runtime/types.js';
import { RuntimeError } from '../../runtime/types.js';

/** Exit code a stopped fake container reports (128 + SIGTERM). */
export const FAKE_STOP_EXIT_CODE = 143;

export class FakeRuntime implements Runtime {
  /** Every call in order: "run <id>", "stop <id>", "remove <id>", "list". */
  readonly calls: string[] = [];
  /** Requests passed to run(), in order. */
  readonly requests: ContainerRequest[] = [];
  /** Arguments of every stop(), in order. */
  readonly stops: Array<{ containerId: string; timeoutMs: number; signal: string }> = [];
  /** When set, run() throws it (after recording the call). */
  runError: Error | undefined;
  private readonly containers = new Map<string, ContainerInfo>();
  private readonly listeners = new Set<ExitListener>();
  private nextPid = 4000;

  /** When set, exec() answers with it; otherwise exec() throws (a test that needs exec sets it). */
  execHandler: ((containerId: string, options: ExecOptions) => Promise<ExecProcess>) | undefined;

  async exec(containerId: string, options: ExecOptions): Promise<ExecProcess> {
    this.calls.push(`exec ${containerId} ${options.argv.join(' ')}`);
    if (this.containers.get(containerId)?.status !== 'running') throw new RuntimeError('not_found', `cannot exec in ${containerId}: it is not running`);
    if (this.execHandler === undefined) throw new Error('FakeRuntime.exec: set execHandler in this test');
    return this.execHandler(containerId, options);
  }

  async run(request: ContainerRequest): Promise<ContainerInfo> {
    this.calls.push(`run ${request.containerId}`);
    this.requests.push(request);
    if (this.runError !== undefined) throw this.runError;
    if (this.containers.has(request.containerId)) throw new RuntimeError('already_exists', `cannot run ${request.containerId}: it exists`);
    this.nextPid += 1;
    const info: ContainerInfo = {
      containerId: request.containerId,
      labels: { ...request.labels },
      status: 'running',
      pid: this.nextPid,
      addresses: [`198.18.129.${this.containers.size + 2}`],
      startedAtMs: 0,
      logPath: `/logs/${request.containerId}.log`,
    };
    this.containers.set(info.containerId, info);
    return { ...info };
  }

  async list(): Promise<ContainerInfo[]> {
    this.calls.push('list');
    return [...this.containers.values()].map((info) => ({ ...info }));
  }

  async inspect(containerId: string): Promise<ContainerInfo | undefined> {
    const info = this.containers.get(containerId);
    return info === undefined ? undefined : { ...info };
  }

  async stop(containerId: string, timeoutMs: number, signal = 'SIGTERM'): Promise<void> {
    this.calls.push(`stop ${containerId}`);
    this.stops.push({ containerId, timeoutMs, signal });
    const info = this.containers.get(containerId);
    if (info === undefined) throw new RuntimeError('not_found', `cannot stop container ${containerId}: no such container`);
    if (info.status !== 'stopped') this.exit(containerId, FAKE_STOP_EXIT_CODE);
  }

  async remove(containerId: string): Promise<void> {
    this.calls.push(`remove ${containerId}`);
    this.containers.delete(containerId);
  }

  watchExits(listener: ExitListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  /** The container's process ends with `exitCode`; watchers hear about it. */
  exit(containerId: string, exitCode: number, oomKilled = false): void {
    const info = this.containers.get(containerId);
    if (info === undefined) throw new Error(`fake runtime: no container ${containerId}`);
    this.containers.set(containerId, { ...info, status: 'stopped', pid: 0, exitCode, oomKilled });
    for (const listener of [...this.listeners]) listener(containerId, exitCode, oomKilled);
  }

  /** A container that already exists when the agent starts (it survived an agent restart). */
  seed(info: Partial<ContainerInfo> & { containerId: string }): void {
    this.containers.set(info.containerId, {
      labels: {},
      status: 'running',
      pid: 7000,
      addresses: ['198.18.129.99'],
      startedAtMs: 0,
      logPath: '',
      ...info,
    });
  }

  has(containerId: string): boolean {
    return this.containers.has(containerId);
  }
}
