/**
 * Benchmark "join" (issue 5): the time from `skiff join --token` to the node showing `ready`,
 * and the rate at which managers issue node certificates through the join port. The reference
 * for issuance, in the same run, is the same issuance done in-process with no RPC and no store
 * write (the floor the RPC path adds to). Prints one JSON line on stdout; progress on stderr.
 *
 *   node dist/bench/join.js [--runs N]      (npm run bench:join -- --runs N)
 *
 * Needs root. Brings up its own lab (1 manager, 1 worker, unique name) with a private
 * SKIFF_HOME and removes it on exit. Each run crashes the worker, removes its node, wipes its
 * credentials, then times `skiff join` + starting skiffd until `node ls` shows the new node
 * ready. Never asserts a speed.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect, type ControlConnection } from '../cli/client.js';
import { fetchPinnedCa, joinPortOf } from '../cli/commands/join.js';
import { labDown, labKill, labStart, labUp, type LabHost } from '../deploy/lab/index.js';
import { repositoryRoot } from '../deploy/lab/daemons.js';
import {
  channelOptions,
  createCertificateAuthority,
  createCertificateRequest,
  issueCertificateForKey,
  parseJoinToken,
  publicKeyOfCertificateRequest,
} from '../pki/index.js';
import { NodeJoinClient } from '../proto/skiff/v1/ca.js';
import { NodeState } from '../proto/skiff/v1/types.js';
import { CleanupStack, pollUntil, progress, randomName, timedRun } from './bench-support.js';
import { summarize } from './stats.js';

const DEFAULT_RUNS = 5;
const MAX_RUNS = 100;
const ISSUE_SECONDS = 5;
const ISSUE_CONCURRENCY = 16;

function parseRuns(argv: readonly string[]): number {
  if (argv.length === 0) return DEFAULT_RUNS;
  const runs = Number(argv[0] === '--runs' ? argv[1] : argv[0]?.replace('--runs=', ''));
  if (!Number.isInteger(runs) || runs < 1 || runs > MAX_RUNS) throw new Error(`cannot parse --runs: expected an integer in 1..${MAX_RUNS}`);
  return runs;
}

/** Calls `issue` with ISSUE_CONCURRENCY in flight for ISSUE_SECONDS; returns certificates per second. */
async function issueRate(issue: () => Promise<void>): Promise<{ perSecond: number; count: number }> {
  const deadline = performance.now() + ISSUE_SECONDS * 1000;
  let count = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: ISSUE_CONCURRENCY }, async () => {
      while (performance.now() < deadline) {
        await issue();
        count += 1;
      }
    }),
  );
  return { perSecond: Math.round((count / ((performance.now() - started) / 1000)) * 10) / 10, count };
}

async function main(): Promise<void> {
  const runs = parseRuns(process.argv.slice(2));
  if (process.getuid?.() !== 0) throw new Error('cannot run the join benchmark: it needs root (lab namespaces)');
  const labName = `bj${randomName(6)}`;
  const cleanups = new CleanupStack();
  const home = await mkdtemp(join(tmpdir(), 'skiff-bench-join-'));
  process.env['SKIFF_HOME'] = home;
  cleanups.push('remove the bench CLI home', () => rm(home, { recursive: true, force: true }));
  let connection: ControlConnection | undefined;
  try {
    progress(`lab ${labName}: 1 manager, 1 worker`);
    cleanups.push(`remove lab ${labName}`, () => labDown(labName).then(() => undefined));
    const state = await labUp({ name: labName, managers: 1, workers: 1 });
    const manager = state.hosts[0] as LabHost;
    const worker = state.hosts[1] as LabHost;
    const managerAddr = `${manager.addr}:4242`;
    connection = await connect(undefined);
    const token = async (): Promise<string> => (await connection!.call((c) => c.getCluster, {})).cluster?.joinTokens?.worker ?? '';

    const joinToReady: number[] = [];
    const joinCommand: number[] = [];
    for (let run = 1; run <= runs; run += 1) {
      await labKill(labName, worker.name);
      const old = (await connection.call((c) => c.listNodes, {})).nodes.find((node) => node.description?.hostname === worker.name);
      if (old !== undefined) await connection.call((c) => c.removeNode, { node: old.meta?.id ?? '', force: true });
      await rm(join(worker.dataDir, 'certs'), { recursive: true, force: true });
      const workerToken = await token();
      const started = performance.now();
      const joined = await timedRun(join(repositoryRoot(), 'bin/skiff'), ['join', '--token', workerToken, '--data-dir', worker.dataDir, '--advertise-addr', `${worker.addr}:4242`, '--hostname', worker.name, managerAddr]);
      if (joined.exitCode !== 0) throw new Error(`skiff join failed: ${joined.stderr}`);
      const nodeId = /joined as worker (\S+);/.exec(joined.stdout)?.[1] ?? '';
      await labStart(labName, worker.name);
      await pollUntil(
        `node ${nodeId} ready`,
        async () => ((await connection!.call((c) => c.listNodes, {})).nodes.some((node) => node.meta?.id === nodeId && node.status?.state === NodeState.NODE_STATE_READY) ? true : undefined),
        { intervalMs: 20, timeoutMs: 60_000 },
      );
      joinToReady.push(performance.now() - started);
      joinCommand.push(joined.elapsedMs);
      progress(`run ${run}: join ${joined.elapsedMs.toFixed(0)} ms, join -> ready ${(performance.now() - started).toFixed(0)} ms`);
    }

    // Issuance through the join port (TLS, token check, CSR check, signing, one store write).
    const workerToken = await token();
    const joinAddr = joinPortOf(managerAddr);
    const caCertPem = await fetchPinnedCa(joinAddr, parseJoinToken(workerToken).caDigest);
    const client = new NodeJoinClient(joinAddr, grpc.credentials.createSsl(Buffer.from(caCertPem)), channelOptions());
    cleanups.push('close the join client', async () => client.close());
    const viaRpc = await issueRate(async () => {
      const request = await createCertificateRequest();
      await new Promise<void>((resolve, reject) =>
        client.issueNodeCertificate({ csr: request.csrDer, token: workerToken, hostname: 'bench', addr: '' }, (error) => (error === null ? resolve() : reject(error))),
      );
    });
    // Reference: the same work in this process, without RPC or store.
    const ca = await createCertificateAuthority();
    const inProcess = await issueRate(async () => {
      const request = await createCertificateRequest();
      await issueCertificateForKey(ca, { commonName: 'bench', role: 'worker' }, await publicKeyOfCertificateRequest(request.csrDer));
    });
    process.stdout.write(
      `${JSON.stringify({
        bench: 'join',
        runs,
        cpus: availableParallelism(),
        joinToReadyMs: summarize(joinToReady),
        joinCommandMs: summarize(joinCommand),
        issuance: { concurrency: ISSUE_CONCURRENCY, seconds: ISSUE_SECONDS, viaJoinRpcPerSecond: viaRpc.perSecond, inProcessPerSecond: inProcess.perSecond, ratio: Math.round((viaRpc.perSecond / inProcess.perSecond) * 100) / 100 },
      })}\n`,
    );
  } finally {
    connection?.close();
    await cleanups.runAll();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench join: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
