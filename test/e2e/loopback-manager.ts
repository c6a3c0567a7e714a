// A real skiffd manager (no agent) on 127.0.0.1, for tests that need one process and no lab:
// start, wait for a log line, stop, start again on the same data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { createCertificateAuthority, issueNodeCredentials, newNodeId, writeCertificateAuthority, writeCredentials } from '../../pki/index.js';
import { repoRoot, waitFor } from './helpers.js';

const STOP_DEADLINE_MS = 10_000;

/** A port P with P and P + 1 both free now (the manager's gRPC and join ports). */
export async function freePortPair(): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt += 1) {
    const candidate = await listenOnce(0);
    if (candidate !== undefined && candidate < 65535 && (await listenOnce(candidate + 1)) !== undefined) return candidate;
  }
  throw new Error('cannot find two consecutive free ports on 127.0.0.1');
}

function listenOnce(wanted: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(wanted, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address !== null ? address.port : undefined));
    });
  });
}

/** True when 127.0.0.1:`port` accepts a TCP connection. */
export function acceptsTcp(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class LoopbackManager {
  private child: ChildProcess | undefined;
  /** Everything the current process wrote (JSON log lines). */
  output = '';

  constructor(
    readonly dataDir: string,
    readonly port: number,
    readonly controlSocket: string,
  ) {}

  start(extraArgs: readonly string[] = []): void {
    const address = `127.0.0.1:${this.port}`;
    this.output = '';
    const child = spawn(
      join(repoRoot, 'bin/skiffd'),
      ['--manager', '--no-agent', '--data-dir', this.dataDir, '--listen-addr', address, '--advertise-addr', address, '--control-socket', this.controlSocket, ...extraArgs],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    this.child = child;
  }

  /** Waits until a log line's msg matches `pattern`; fails early, with the output, if skiffd exits. */
  async waitForLog(pattern: RegExp, timeoutMs = 60_000): Promise<void> {
    await waitFor(`skiffd to log ${pattern}`, timeoutMs, async () => {
      if (this.child?.exitCode !== null || this.child.signalCode !== null) throw new Error(`skiffd exited:\n${this.output}`);
      const logged = this.output.split('\n').some((line) => {
        try {
          return pattern.test(String((JSON.parse(line) as { msg?: unknown }).msg));
        } catch {
          return false;
        }
      });
      return logged ? true : undefined;
    });
  }

  /** SIGTERM, then SIGKILL after a deadline. */
  async stop(): Promise<void> {
    const child = this.child;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_DEADLINE_MS);
    await exited;
    clearTimeout(timer);
  }
}

/**
 * A manager without agent on a new cluster CA in `dataDir` (built skiffd; control socket
 * `dataDir/skiff.sock`, Docker API `dataDir/docker.sock`), started and ready.
 */
export async function startBareManager(dataDir: string, startDeadlineMs = 60_000): Promise<LoopbackManager> {
  if (!existsSync(join(repoRoot, 'dist/cli/skiffd.js'))) throw new Error('cannot start skiffd: dist/cli/skiffd.js is missing; run `npm run build` first');
  const ca = await createCertificateAuthority();
  await writeCertificateAuthority(join(dataDir, 'ca'), ca);
  await writeCredentials(join(dataDir, 'certs'), await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'manager', ipAddresses: ['127.0.0.1'] }));
  const manager = new LoopbackManager(dataDir, await freePortPair(), join(dataDir, 'skiff.sock'));
  manager.start();
  await manager.waitForLog(/^skiffd ready$/, startDeadlineMs);
  return manager;
}
