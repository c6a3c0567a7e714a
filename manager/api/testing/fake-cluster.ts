/**
 * A one-manager cluster for API and dispatcher tests: a real CA, a real manager (startManager)
 * on 127.0.0.1 with mutual TLS and a control socket, all under one temp directory; plus
 * promisified Control clients. `restart()` stops the manager and starts a new one on the same
 * data dir, as a restarted skiffd would.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { silentLogger } from '../../../common/log.js';
import {
  type CertificateAuthority,
  channelCredentials,
  channelOptions,
  createCertificateAuthority,
  issueNodeCredentials,
  newNodeId,
  type NodeCredentials,
  type NodeRole,
} from '../../../pki/index.js';
import { ControlClient } from '../../../proto/skiff/v1/control.js';
import type { ServiceSpec } from '../../../proto/skiff/v1/specs.js';
import { type RunningManager, startManager } from '../../manager.js';

/** Deadline of one test call. */
export const CALL_DEADLINE_MS = 5_000;

type Unary<Request, Response> = (
  request: Request,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Response) => void,
) => grpc.ClientUnaryCall;

/** A Control client whose calls return promises (rejecting with the grpc ServiceError). */
export class ControlApi {
  constructor(readonly client: ControlClient) {}

  call<Request, Response>(pick: (client: ControlClient) => Unary<Request, Response>, request: Request): Promise<Response> {
    return new Promise((resolve, reject) => {
      pick(this.client).call(this.client, request, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (error, response) =>
        error === null ? resolve(response) : reject(error),
      );
    });
  }

  close(): void {
    this.client.close();
  }
}

/** A free TCP port on 127.0.0.1 (startManager does not report the port it bound). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('cannot find a free port');
  return address.port;
}

export interface FakeClusterOptions {
  heartbeatPeriodMs?: number;
  /** Registries the manager pins image tags against (none: no pinning). */
  registries?: { defaultRegistry: string; insecureRegistries: string[] };
}

export class FakeCluster {
  /** Set by start(); replaced by restart(). */
  manager!: RunningManager;
  readonly managerNodeId = newNodeId();
  private readonly clients: ControlApi[] = [];

  private constructor(
    readonly ca: CertificateAuthority,
    readonly dir: string,
    readonly address: string,
    private readonly managerCredentials: NodeCredentials,
    private readonly options: FakeClusterOptions,
  ) {}

  static async start(options: FakeClusterOptions = {}): Promise<FakeCluster> {
    const ca = await createCertificateAuthority();
    const dir = await mkdtemp(join(tmpdir(), 'skiff-cluster-'));
    const address = `127.0.0.1:${await freePort()}`;
    const credentials = await issueNodeCredentials(ca, { nodeId: newNodeId(), role: 'manager', ipAddresses: ['127.0.0.1'] });
    const cluster = new FakeCluster(ca, dir, address, credentials, options);
    cluster.manager = await cluster.boot();
    return cluster;
  }

  get controlSocket(): string {
    return join(this.dir, 'run', 'skiff.sock');
  }

  /** Credentials of this cluster for `role` (a new node id unless given). */
  credentials(role: NodeRole, nodeId = newNodeId()): Promise<NodeCredentials> {
    return issueNodeCredentials(this.ca, { nodeId, role });
  }

  /** A Control client over mutual TLS with `credentials` (a new admin certificate by default). */
  async control(credentials?: NodeCredentials): Promise<ControlApi> {
    const creds = credentials ?? (await this.credentials('admin'));
    const api = new ControlApi(new ControlClient(this.address, channelCredentials(creds), channelOptions()));
    this.clients.push(api);
    return api;
  }

  /** A Control client on the local unix socket, with no certificate at all. */
  localControl(): ControlApi {
    const api = new ControlApi(new ControlClient(`unix://${this.controlSocket}`, grpc.credentials.createInsecure()));
    this.clients.push(api);
    return api;
  }

  /** Stops the manager and starts a new one on the same data dir and address. */
  async restart(): Promise<void> {
    await this.manager.stop();
    this.manager = await this.boot();
  }

  async close(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    await this.manager.stop();
    await rm(this.dir, { recursive: true, force: true });
  }

  private boot(): Promise<RunningManager> {
    return startManager({
      dataDir: join(this.dir, 'data'),
      clusterId: this.ca.clusterId,
      selfNodeId: this.managerNodeId,
      credentials: this.managerCredentials,
      listenAddr: this.address,
      advertiseAddr: this.address,
      controlSocket: this.controlSocket,
      // The gRPC port + 1 may belong to another test's connection: let the kernel pick.
      joinListenAddr: '127.0.0.1:0',
      log: silentLogger,
      ...(this.options.heartbeatPeriodMs === undefined ? {} : { heartbeatPeriodMs: this.options.heartbeatPeriodMs }),
      ...(this.options.registries === undefined ? {} : { registries: this.options.registries }),
    });
  }
}

/** A valid replicated service spec; `restartDelayMs` shortens the restart delay for tests. */
export function fakeServiceSpec(name: string, replicas: number, options: { image?: string; restartDelayMs?: number } = {}): ServiceSpec {
  return {
    name,
    labels: {},
    taskTemplate: {
      container: { image: options.image ?? 'demo/web:v1', command: [], args: [], env: [], user: '', workdir: '', hostname: '', mounts: [], healthcheck: undefined, readOnly: false, capAdd: [], capDrop: [], sysctls: {}, ulimits: [], init: false, stopSignal: '', stopGracePeriodMs: 0, labels: {}, secrets: [], configs: [] },
      resources: undefined,
      restartPolicy: { condition: '', delayMs: options.restartDelayMs ?? 0, maxAttempts: 0, windowMs: 0 },
      placement: undefined,
      networks: [],
      forceUpdate: 0,
      networkAliases: [],
    },
    mode: { $case: 'replicated', value: { replicas } },
    updateConfig: undefined,
    rollbackConfig: undefined,
    endpoint: undefined,
    deployStrategy: '',
    rebalance: '',
    bluegreenHoldMs: 0,
    canaryReplicas: 0,
  };
}
