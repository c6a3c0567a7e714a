/**
 * Issue 5 on the lab: nodes join with tokens that pin the CA; a token for another CA, or a
 * rotated one, is refused with the reason; certificates with a 30-second lifetime renew and the
 * cluster keeps working past their expiry; a demotion that would lose quorum is refused; a
 * removed node is cut off within seconds.
 */
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labKill, labRestart, labStart, labUp, leftovers, type LabState } from '../../deploy/lab/index.js';
import * as grpc from '@grpc/grpc-js';
import { caDigest, channelCredentials, channelOptions, createCertificateAuthority, newJoinToken, type NodeCredentials } from '../../pki/index.js';
import { ControlClient } from '../../proto/skiff/v1/control.js';
import type { Cluster } from '../../proto/skiff/v1/objects.js';
import { skiff, skiffJson, uniqueLab, waitFor } from './helpers.js';

interface NodeRow {
  id: string;
  hostname: string;
  role: string;
  status: string;
  managerStatus: string;
}

const CERT_LIFETIME_MS = 30_000;
const lab = uniqueLab('sec');
const scratch = mkdtempSync(join(tmpdir(), 'skiff-e2e-join-'));
afterAll(async () => {
  await labDown(lab.name).catch(() => undefined);
  rmSync(lab.home, { recursive: true, force: true });
  rmSync(scratch, { recursive: true, force: true });
});

const host = (state: LabState, name: string) => {
  const found = state.hosts.find((candidate) => candidate.name === name);
  if (found === undefined) throw new Error(`no host ${name}`);
  return found;
};
const certOf = (state: LabState, name: string): X509Certificate => new X509Certificate(readFileSync(join(host(state, name).dataDir, 'certs', 'node.crt')));
const nodes = (): Promise<NodeRow[]> => skiffJson<NodeRow[]>(lab.home, ['node', 'ls']);
/** The lab context's admin credential files (config.json of the lab's CLI home). */
const adminPaths = (): { certPath: string; keyPath: string; caCertPath: string } => {
  const config = JSON.parse(readFileSync(join(lab.home, 'config.json'), 'utf8')) as { current: string; contexts: Record<string, { certPath: string; keyPath: string; caCertPath: string }> };
  const paths = config.contexts[config.current];
  if (paths === undefined) throw new Error(`no current context in ${lab.home}`);
  return paths;
};
const adminCertPath = (): string => adminPaths().certPath;
/** The lab context's admin credential as it is on disk now. */
const adminCredential = (): NodeCredentials => {
  const paths = adminPaths();
  return { certPem: readFileSync(paths.certPath, 'utf8'), keyPem: readFileSync(paths.keyPath, 'utf8'), caCertPem: readFileSync(paths.caCertPath, 'utf8') };
};
const certificateCount = (pem: string): number => pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
/** One Control call on a new connection (no shared subchannel) with exactly `credentials`. */
const getCluster = (addr: string, credentials: NodeCredentials): Promise<{ ok: true; cluster: Cluster | undefined } | { ok: false; code: grpc.status; details: string }> => {
  const client = new ControlClient(addr, channelCredentials(credentials), { ...channelOptions(), 'grpc.use_local_subchannel_pool': 1 });
  return new Promise<{ ok: true; cluster: Cluster | undefined } | { ok: false; code: grpc.status; details: string }>((resolve) => {
    client.getCluster({}, new grpc.Metadata(), { deadline: Date.now() + 10_000 }, (error, response) => resolve(error === null ? { ok: true, cluster: response.cluster } : { ok: false, code: error.code, details: error.details }));
  }).finally(() => client.close());
};

describe('cluster security on the lab', () => {
  let state: LabState;

  it('every host joins with a token: three managers and a worker, all ready', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    state = await labUp({ name: lab.name, managers: 3, workers: 1, certExpiryMs: CERT_LIFETIME_MS });
    const rows = await waitFor('four ready nodes', 60_000, async () => {
      const current = await nodes();
      return current.length === 4 && current.every((row) => row.status === 'ready') ? current : undefined;
    });
    expect(rows.map((row) => `${row.hostname}:${row.role}`).sort()).toEqual(['h1:manager', 'h2:manager', 'h3:manager', 'h4:worker']);
    // The CA key left the first manager's disk once the store held it.
    await waitFor('the CA key to leave h1\'s disk', 10_000, async () => {
      try {
        readFileSync(join(host(state, 'h1').dataDir, 'ca', 'ca.key'));
        return undefined;
      } catch {
        return true;
      }
    });
  });

  it('a token that pins another CA is refused, naming the mismatch', async () => {
    const other = await createCertificateAuthority();
    const forged = newJoinToken(caDigest(other.certPem));
    const result = await skiff(lab.home, ['join', '--token', forged, '--data-dir', join(scratch, 'forged'), '--advertise-addr', '198.18.0.250:4242', `${host(state, 'h1').addr}:4242`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`but the token pins ${caDigest(other.certPem)}`);
    expect(result.stderr).toMatch(/presents a CA with digest [0-9a-z]{50}/);
  });

  it('a rotated token is refused for new joins; the new one works', async () => {
    const old = (await skiff(lab.home, ['join-token', '-q', 'worker'])).stdout.trim();
    const rotated = await skiff(lab.home, ['join-token', '--rotate', '-q', 'worker']);
    expect(rotated.code).toBe(0);
    const fresh = rotated.stdout.trim();
    expect(fresh).toMatch(/^SKF-1-/);
    expect(fresh).not.toBe(old);
    const refused = await skiff(lab.home, ['join', '--token', old, '--data-dir', join(scratch, 'old'), '--advertise-addr', '198.18.0.251:4242', `${host(state, 'h1').addr}:4242`]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/join token is not valid \(it was rotated/);
    const accepted = await skiff(lab.home, ['join', '--token', fresh, '--data-dir', join(scratch, 'new'), '--advertise-addr', '198.18.0.252:4242', '--hostname', 'extra', `${host(state, 'h1').addr}:4242`]);
    expect(accepted.stderr).toBe('');
    expect(accepted.stdout).toMatch(/joined as worker/);
    // Joined but never started: it is a node the cluster knows, and it can be removed at once.
    const extra = await waitFor('the joined node to be listed', 10_000, async () => (await nodes()).find((row) => row.hostname === 'extra'));
    expect(extra.status).not.toBe('ready');
    expect((await skiff(lab.home, ['node', 'rm', 'extra'])).code).toBe(0);
  });

  it('certificates renew before they expire, and the cluster keeps working past the first expiry', async () => {
    const first = new Map(['h1', 'h2', 'h3', 'h4'].map((name) => [name, certOf(state, name)]));
    const lastExpiry = Math.max(...[...first.values()].map((cert) => Date.parse(cert.validTo)));
    await waitFor('every node to renew its certificate', 60_000, async () =>
      [...first].every(([name, cert]) => certOf(state, name).serialNumber !== cert.serialNumber) ? true : undefined,
    500);
    for (const [name] of first) {
      const renewed = certOf(state, name);
      expect(renewed.subject).toContain(`OU=${name === 'h4' ? 'worker' : 'manager'}`);
      expect(Date.parse(renewed.validTo) - Date.parse(renewed.validFrom)).toBeLessThanOrEqual(CERT_LIFETIME_MS + CERT_LIFETIME_MS / 10);
    }
    await waitFor('every original certificate to have expired', CERT_LIFETIME_MS + 10_000, async () => (Date.now() > lastExpiry + 1_000 ? true : undefined), 500);
    // New TLS handshakes in every direction now need the renewed certificates.
    const rows = await nodes();
    expect(rows.filter((row) => row.role === 'manager').map((row) => row.managerStatus).sort()).toEqual(['leader', 'reachable', 'reachable']);
    expect(rows.every((row) => row.status === 'ready')).toBe(true);
    const created = await skiff(lab.home, ['service', 'create', '--name', 'after-renewal', '--replicas', '2', 'demo/web:v1']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
  });

  it('ca rotate: every node renews onto the new root, and old and new certificates work together meanwhile', async () => {
    const before = (await skiff(lab.home, ['join-token', '-q', 'worker'])).stdout.trim();
    // The admin credential as it was (certificate and key, from the old root), for after the rotation.
    const oldAdmin = adminCredential();
    const adminBefore = oldAdmin.certPem;
    const rotated = await skiff(lab.home, ['ca', 'rotate', '--timeout', '90s']);
    expect(rotated.stderr).toBe('');
    const digest = /new digest ([0-9a-z]{50})/.exec(rotated.stdout)?.[1] ?? '';
    expect(digest).not.toBe(before.split('-')[2]);
    // The CLI moved its own admin credential onto the new root at once: same identity, signed by
    // the root its new trust bundle starts with (the chain through the cross-signed root lets
    // managers that still trust only the old root accept it).
    expect(rotated.stdout).toMatch(/admin credential of context \S+ was renewed onto the new root/);
    const adminAfter = readFileSync(adminCertPath(), 'utf8');
    expect(adminAfter).not.toBe(adminBefore);
    const adminBundle = readFileSync(join(dirname(adminCertPath()), 'ca.crt'), 'utf8');
    expect(caDigest(adminBundle)).toBe(digest);
    expect(new X509Certificate(adminAfter).verify(new X509Certificate(adminBundle).publicKey)).toBe(true);
    expect(new X509Certificate(adminAfter).subject).toBe(new X509Certificate(adminBefore).subject);
    const after = (await skiff(lab.home, ['join-token', '-q', 'worker'])).stdout.trim();
    expect(after.split('-')[2]).toBe(digest);
    expect(after.split('-')[3]).toBe(before.split('-')[3]);
    await waitFor('every node to hold a certificate from the new root', 30_000, async () => {
      for (const name of ['h1', 'h2', 'h3', 'h4']) {
        const bundle = readFileSync(join(host(state, name).dataDir, 'certs', 'ca.crt'), 'utf8');
        if (caDigest(bundle) !== digest) return undefined;
        if (!certOf(state, name).verify(new X509Certificate(bundle).publicKey)) return undefined;
      }
      return true;
    }, 500);
    // The rotation finished (the command waited for it), and every node renewed once more for a
    // trust bundle of the new root only.
    expect(rotated.stdout).toMatch(/root rotation: \d of \d nodes hold a certificate from the new root/);
    expect(rotated.stdout).toContain('previous root is no longer trusted');
    const managerAddr = `${host(state, 'h1').addr}:4242`;
    const finished = await getCluster(managerAddr, adminCredential());
    expect(finished.ok && finished.cluster?.rootCa).toMatchObject({ caDigest: digest, previousCaCertPem: '', crossSignedCaCertPem: '' });
    await waitFor('every host to trust the new root only', 30_000, async () => {
      for (const name of ['h1', 'h2', 'h3', 'h4']) {
        const bundle = readFileSync(join(host(state, name).dataDir, 'certs', 'ca.crt'), 'utf8');
        if (certificateCount(bundle) !== 1 || caDigest(bundle) !== digest) return undefined;
      }
      return true;
    }, 500);
    const current = adminCredential();
    expect(certificateCount(current.caCertPem)).toBe(1);
    // The old-root admin credential, trusting the new root (so the client side would accept the
    // manager): every manager refuses it in the handshake now. The current one works.
    for (const name of ['h1', 'h2', 'h3']) {
      const addr = `${host(state, name).addr}:4242`;
      const refused = await waitFor(`${name} to refuse the old-root admin credential`, 30_000, async () => {
        const outcome = await getCluster(addr, { ...oldAdmin, caCertPem: current.caCertPem });
        return outcome.ok ? undefined : outcome;
      }, 500);
      expect(refused.code).toBe(grpc.status.UNAVAILABLE);
      expect(await getCluster(addr, current)).toMatchObject({ ok: true });
    }
    const rows = await nodes();
    expect(rows.every((row) => row.status === 'ready')).toBe(true);
    const created = await skiff(lab.home, ['service', 'create', '--name', 'after-rotation', 'demo/web:v1']);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
  });

  it('a demotion that would lose quorum is refused, and says why', async () => {
    const leader = (await nodes()).find((row) => row.managerStatus === 'leader')?.hostname;
    const [kept, stopped] = ['h1', 'h2', 'h3'].filter((name) => name !== leader);
    if (leader === undefined || kept === undefined || stopped === undefined) throw new Error('no leader');
    await labKill(lab.name, stopped);
    await waitFor(`the leader to see ${stopped} unreachable`, 30_000, async () => ((await nodes()).find((row) => row.hostname === stopped)?.managerStatus === 'unreachable' ? true : undefined), 500);
    const refused = await skiff(lab.home, ['node', 'demote', kept]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`cannot demote ${kept}: the 2 remaining managers would need 2 reachable for a quorum, but only 1 are reachable`);
    await labStart(lab.name, stopped);
    await waitFor(`${stopped} reachable again`, 30_000, async () => ((await nodes()).find((row) => row.hostname === stopped)?.managerStatus === 'reachable' ? true : undefined));
    const demoted = await skiff(lab.home, ['node', 'demote', stopped]);
    expect(demoted.stderr).toBe('');
    const rows = await nodes();
    expect(rows.find((row) => row.hostname === stopped)?.role).toBe('worker');
    expect(rows.filter((row) => row.managerStatus !== '').map((row) => row.hostname).sort()).toEqual([leader, kept].sort());
    // The demoted node learns its new role from its next certificate and stops its manager role.
    await waitFor(`${stopped} to hold a worker certificate`, 60_000, async () => (certOf(state, stopped).subject.includes('OU=worker') ? true : undefined), 500);
  });

  it('promote turns the demoted node back into a manager that joins the group', async () => {
    const demoted = (await nodes()).find((row) => row.role === 'worker' && row.hostname !== 'h4')?.hostname;
    if (demoted === undefined) throw new Error('no demoted manager');
    const promoted = await skiff(lab.home, ['node', 'promote', demoted]);
    expect(promoted.stderr).toBe('');
    expect(promoted.stdout).toContain(`Node ${demoted} promoted to a manager.`);
    await waitFor(`${demoted} to be a reachable manager again`, 60_000, async () => {
      const row = (await nodes()).find((candidate) => candidate.hostname === demoted);
      return row?.role === 'manager' && row.managerStatus === 'reachable' ? true : undefined;
    }, 500);
    expect(certOf(state, demoted).subject).toContain('OU=manager');
  });

  it('demoting the leader hands leadership over first, and one command does it', async () => {
    const leader = (await nodes()).find((row) => row.managerStatus === 'leader')?.hostname;
    if (leader === undefined) throw new Error('no leader');
    // The manager promoted just before may still be catching up: a demotion that would leave no
    // reachable majority is refused until it counts.
    const demoted = await waitFor('the leader to be demoted', 30_000, async () => {
      const result = await skiff(lab.home, ['node', 'demote', leader]);
      if (result.code !== 0 && !/would need \d+ reachable/.test(result.stderr)) throw new Error(result.stderr);
      return result.code === 0 ? result : undefined;
    }, 500);
    expect(demoted.stderr).toBe('');
    expect(demoted.stdout).toContain(`Manager ${leader} demoted to a worker.`);
    // The old leader stops serving as a manager once its next certificate says worker; until
    // then its store (no longer replicated to) is stale, so read the cluster after that.
    await waitFor(`${leader} to hold a worker certificate`, 60_000, async () => (certOf(state, leader).subject.includes('OU=worker') ? true : undefined), 500);
    const rows = await waitFor('a new leader among the other managers, and the old one a worker', 30_000, async () => {
      const current = await nodes();
      const next = current.find((row) => row.managerStatus === 'leader')?.hostname;
      return next !== undefined && next !== leader && current.find((row) => row.hostname === leader)?.role === 'worker' ? current : undefined;
    });
    expect(rows.filter((row) => row.role === 'manager')).toHaveLength(2);
  });

  it('a node follows its certificate\'s role across restarts: a demoted manager restarts as a worker, a promoted worker as a manager', async () => {
    const logOf = (name: string): string => join(host(state, name).dataDir, 'skiffd.log');
    const row = async (name: string): Promise<NodeRow | undefined> => (await nodes()).find((candidate) => candidate.hostname === name);
    // The leader demoted above: the lab still starts it with --manager, as its first command line did.
    const demoted = (await nodes()).find((candidate) => candidate.role === 'worker' && candidate.hostname !== 'h4')?.hostname;
    if (demoted === undefined) throw new Error('no demoted manager');
    let offset = readFileSync(logOf(demoted)).length;
    await labRestart(lab.name, demoted);
    expect(readFileSync(logOf(demoted)).subarray(offset).toString()).toContain('the node certificate says worker');
    await waitFor(`${demoted} ready as a worker after its restart`, 30_000, async () => {
      const current = await row(demoted);
      return current?.status === 'ready' && current.role === 'worker' ? true : undefined;
    }, 500);

    // h4 joined as a worker and is started without --manager; promoted, it stays a manager across a restart.
    expect((await skiff(lab.home, ['node', 'promote', 'h4'])).stderr).toBe('');
    await waitFor('h4 to be a reachable manager', 60_000, async () => {
      const current = await row('h4');
      return current?.role === 'manager' && current.managerStatus === 'reachable' && certOf(state, 'h4').subject.includes('OU=manager') ? true : undefined;
    }, 500);
    offset = readFileSync(logOf('h4')).length;
    await labRestart(lab.name, 'h4');
    expect(readFileSync(logOf('h4')).subarray(offset).toString()).toContain('the node certificate says manager');
    await waitFor('h4 a reachable manager again after its restart', 60_000, async () => {
      const current = await row('h4');
      return current?.role === 'manager' && current.managerStatus === 'reachable' ? true : undefined;
    }, 500);

    // h4 a worker again, for the removal below.
    await waitFor('h4 to be demoted', 30_000, async () => {
      const result = await skiff(lab.home, ['node', 'demote', 'h4']);
      if (result.code !== 0 && !/would need \d+ reachable/.test(result.stderr)) throw new Error(result.stderr);
      return result.code === 0 ? true : undefined;
    }, 500);
    await waitFor('h4 to hold a worker certificate', 60_000, async () => (certOf(state, 'h4').subject.includes('OU=worker') ? true : undefined), 500);
    await waitFor('h4 ready as a worker', 30_000, async () => {
      const current = await row('h4');
      return current?.status === 'ready' && current.role === 'worker' ? true : undefined;
    }, 500);
  });

  it('a removed node is refused at once, and its agent is cut off', async () => {
    const refused = await skiff(lab.home, ['node', 'rm', 'h4']);
    expect(refused.stderr).toMatch(/cannot remove h4: it is ready/);
    const log = join(host(state, 'h4').dataDir, 'skiffd.log');
    const offset = readFileSync(log).length;
    const removedAt = Date.now();
    expect((await skiff(lab.home, ['node', 'rm', '--force', 'h4'])).code).toBe(0);
    await waitFor('h4\'s agent to be refused', 10_000, async () =>
      readFileSync(log).subarray(offset).toString().includes('was removed from the cluster') ? true : undefined,
    );
    expect(Date.now() - removedAt).toBeLessThan(10_000);
    expect((await nodes()).map((row) => row.hostname)).not.toContain('h4');
  });

  it('comes down without leftovers', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
