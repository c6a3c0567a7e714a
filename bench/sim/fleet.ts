/**
 * A fleet of simulated agents in this process: worker certificates issued directly from the
 * cluster CA (not through the join port: 1,000 joins would time the join path, not placement),
 * sessions opened in waves so the leader is not asked for a thousand TLS handshakes at once.
 */
import { silentLogger, type Logger } from '../../common/log.js';
import { issueNodeCredentials, newNodeId, type CertificateAuthority, type NodeCredentials } from '../../pki/index.js';
import { checkNotStopping, pollUntil, progress } from '../bench-support.js';
import { SimulatedAgent } from './fake-agent.js';

/** Largest fleet one process simulates. */
export const MAX_SIMULATED_NODES = 5_000;
/** Certificates issued concurrently (WebCrypto's key work runs on libuv's pool). */
const ISSUE_IN_FLIGHT = 8;
/** Sessions opened per wave; the next wave starts once this one's sessions all started. */
const SESSIONS_PER_WAVE = 100;
const WAVE_TIMEOUT_MS = 60_000;
const WAVE_POLL_INTERVAL_MS = 50;

export interface Fleet {
  agents: SimulatedAgent[];
  nodeIds: string[];
  /** Sum over agents of the tasks they hold with desired state RUNNING (each task is held by one node). */
  assignedToRun(): number;
  /** Sessions started in total (equal to the fleet size unless some reconnected). */
  sessionsStarted(): number;
  /** Assignments messages received in total, over every agent and session. */
  assignmentsReceived(): number;
  close(): void;
}

/** Issues `count` worker certificates from `ca`, `ISSUE_IN_FLIGHT` at a time. */
export async function issueWorkerCredentials(ca: CertificateAuthority, count: number): Promise<Array<{ nodeId: string; credentials: NodeCredentials }>> {
  const issued: Array<{ nodeId: string; credentials: NodeCredentials }> = [];
  for (let offset = 0; offset < count; offset += ISSUE_IN_FLIGHT) {
    checkNotStopping();
    const wave = Array.from({ length: Math.min(ISSUE_IN_FLIGHT, count - offset) }, async () => {
      const nodeId = newNodeId();
      return { nodeId, credentials: await issueNodeCredentials(ca, { nodeId, role: 'worker' }) };
    });
    issued.push(...(await Promise.all(wave)));
  }
  return issued;
}

/**
 * Starts one simulated agent per credential, hostname `sim-00001`…, each dialling `managers` (the
 * leader first). Resolves once every session started. The caller must close() the fleet.
 */
export async function startFleet(options: {
  credentials: ReadonlyArray<{ nodeId: string; credentials: NodeCredentials }>;
  managers: string[];
  log?: Logger;
}): Promise<Fleet> {
  if (options.credentials.length > MAX_SIMULATED_NODES) throw new Error(`cannot start the fleet: ${options.credentials.length} nodes is more than ${MAX_SIMULATED_NODES}`);
  const agents: SimulatedAgent[] = [];
  const fleet: Fleet = {
    agents,
    nodeIds: options.credentials.map((entry) => entry.nodeId),
    assignedToRun: () => agents.reduce((sum, agent) => sum + agent.runtime.assignedToRun, 0),
    sessionsStarted: () => agents.reduce((sum, agent) => sum + agent.sessionsStarted, 0),
    assignmentsReceived: () => agents.reduce((sum, agent) => sum + agent.assignmentsReceived, 0),
    close: () => {
      for (const agent of agents) agent.close();
    },
  };
  try {
    for (let offset = 0; offset < options.credentials.length; offset += SESSIONS_PER_WAVE) {
      const wave = options.credentials.slice(offset, offset + SESSIONS_PER_WAVE).map((entry, index) => {
        const hostname = `sim-${String(offset + index + 1).padStart(5, '0')}`;
        const agent = new SimulatedAgent({ managers: options.managers, credentials: entry.credentials, hostname, log: options.log ?? silentLogger, clock: Date.now });
        agents.push(agent);
        agent.start();
        return agent;
      });
      await pollUntil(`start sessions ${offset + 1}..${offset + wave.length}`, async () => (wave.every((agent) => agent.sessionsStarted > 0) ? true : undefined), {
        intervalMs: WAVE_POLL_INTERVAL_MS,
        timeoutMs: WAVE_TIMEOUT_MS,
      });
      progress(`fleet: ${agents.length}/${options.credentials.length} sessions started`);
    }
  } catch (error) {
    fleet.close();
    throw error;
  }
  return fleet;
}
