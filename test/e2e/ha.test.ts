/**
 * Issue 4 on the lab: managers as a Raft group. Three managers survive kill -9 of the leader
 * and the old leader rejoins; five managers keep a majority through a partition, the minority
 * refuses writes with "no quorum" and catches up after heal; a group that lost quorum fails
 * fast and comes back with --force-new-cluster, every service intact.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { labDown, labHeal, labKill, labPartition, labStart, labUp, leftovers, type LabState } from '../../deploy/lab/index.js';
import { skiff, uniqueLab, waitFor } from './helpers.js';

interface NodeRow {
  id: string;
  hostname: string;
  role: string;
  status: string;
  managerStatus: string;
}
interface ServiceRow {
  name: string;
}

const labs: Array<{ name: string; home: string }> = [];
afterAll(async () => {
  for (const lab of labs) {
    await labDown(lab.name).catch(() => undefined);
    rmSync(lab.home, { recursive: true, force: true });
  }
});

/**
 * A SKIFF_HOME inside `home` whose current context is the lab's, with the managers on `first`
 * hosts listed before the others (the admin credential is the lab's: its paths are absolute).
 */
function minorityFirstHome(home: string, state: LabState, first: readonly string[]): string {
  const config = JSON.parse(readFileSync(join(home, 'config.json'), 'utf8')) as { current: string; contexts: Record<string, { managers: string[] }> };
  const context = config.contexts[config.current];
  if (context === undefined) throw new Error(`no current context in ${home}`);
  const firstAddrs = state.hosts.filter((host) => first.includes(host.name)).map((host) => host.addr);
  const isFirst = (manager: string): boolean => firstAddrs.includes(manager.slice(0, manager.lastIndexOf(':')));
  context.managers = [...context.managers.filter(isFirst), ...context.managers.filter((manager) => !isFirst(manager))];
  if (!isFirst(context.managers[0] ?? '')) throw new Error(`the context of ${home} lists no manager of ${first.join(', ')}`);
  const alternate = join(home, 'minority-first');
  mkdirSync(alternate, { mode: 0o700, recursive: true });
  writeFileSync(join(alternate, 'config.json'), JSON.stringify(config), { mode: 0o600 });
  return alternate;
}

/** Runs the CLI against one manager only, through its local control socket. */
function via(state: LabState, home: string, host: string, args: string[]) {
  const target = state.hosts.find((candidate) => candidate.name === host);
  if (target === undefined) throw new Error(`no host ${host}`);
  return skiff(home, ['-H', `unix://${target.controlSocket}`, ...args], 30_000);
}

async function jsonVia<T>(state: LabState, home: string, host: string, args: string[]): Promise<T> {
  const result = await via(state, home, host, [...args, '--format', 'json']);
  if (result.code !== 0) throw new Error(`${args.join(' ')} on ${host}: ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Members some leader proposed to promote from learner to voter, read from every host's log. */
function promotedMembers(state: LabState): Set<string> {
  const members = new Set<string>();
  for (const host of state.hosts) {
    const log = readFileSync(join(host.dataDir, 'skiffd.log'), 'utf8');
    for (const line of log.split('\n')) {
      if (!line.includes('promoting caught-up learner')) continue;
      const member = /"member":"([^"]+)"/.exec(line)?.[1];
      if (member !== undefined) members.add(member);
    }
  }
  return members;
}

const servicesOn = async (state: LabState, home: string, host: string): Promise<string[]> =>
  (await jsonVia<ServiceRow[]>(state, home, host, ['service', 'ls'])).map((service) => service.name).sort();

async function leaderSeenBy(state: LabState, home: string, host: string, exclude: string[] = []): Promise<string> {
  return waitFor(`a leader seen by ${host}`, 30_000, async () => {
    const nodes = await jsonVia<NodeRow[]>(state, home, host, ['node', 'ls']);
    const leader = nodes.find((node) => node.managerStatus === 'leader');
    return leader !== undefined && !exclude.includes(leader.hostname) ? leader.hostname : undefined;
  });
}

/** Creates a service through `host`, retrying while an election settles; returns once acknowledged. */
async function createThrough(state: LabState, home: string, host: string, name: string): Promise<void> {
  await waitFor(`service ${name} to be created through ${host}`, 30_000, async () => {
    const result = await via(state, home, host, ['service', 'create', '--detach', '--name', name, 'demo/web:v1']);
    return result.code === 0 ? true : undefined;
  }, 300);
}

describe('three managers', () => {
  const lab = uniqueLab('ha3');
  labs.push(lab);
  let state: LabState;

  it('three managers form one group with one leader', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    state = await labUp({ name: lab.name, managers: 3, workers: 1 });
    await waitFor('three managers, one leader, all reachable, and a ready worker', 60_000, async () => {
      const nodes = await jsonVia<NodeRow[]>(state, lab.home, 'h1', ['node', 'ls']);
      const statuses = nodes.filter((node) => node.role === 'manager').map((node) => node.managerStatus).sort();
      return nodes.length === 4 && nodes.every((node) => node.status === 'ready') && statuses.join() === 'leader,reachable,reachable' ? true : undefined;
    });
    await waitFor('both learners promoted to voters', 60_000, async () => (promotedMembers(state).size >= 2 ? true : undefined), 500);
    await createThrough(state, lab.home, 'h2', 'before');
  });

  it('kill -9 of the leader: a new leader is elected and writes succeed again', async () => {
    const oldLeader = await leaderSeenBy(state, lab.home, 'h1');
    await labKill(lab.name, oldLeader);
    const survivor = ['h1', 'h2', 'h3'].find((host) => host !== oldLeader) ?? 'h1';
    const newLeader = await leaderSeenBy(state, lab.home, survivor, [oldLeader]);
    expect(newLeader).not.toBe(oldLeader);
    await createThrough(state, lab.home, survivor, 'after-failover');
    expect(await servicesOn(state, lab.home, survivor)).toEqual(['after-failover', 'before']);
    // The worker's agent follows the leader: a new leader marks a silent node down after three
    // missed heartbeats (3 s), so the worker still being ready 5 s on means it reconnected.
    const killedAt = Date.now();
    await waitFor('the worker to be ready with the new leader after the heartbeat deadline', 30_000, async () => {
      if (Date.now() - killedAt < 5_000) return undefined;
      const nodes = await jsonVia<NodeRow[]>(state, lab.home, survivor, ['node', 'ls']);
      return nodes.find((node) => node.hostname === 'h4')?.status === 'ready' ? true : undefined;
    });

    await labStart(lab.name, oldLeader);
    await waitFor(`${oldLeader} to catch up`, 30_000, async () =>
      (await servicesOn(state, lab.home, oldLeader)).includes('after-failover') ? true : undefined,
    );
    const nodes = await waitFor(`${oldLeader} to rejoin as a follower`, 30_000, async () => {
      const rows = await jsonVia<NodeRow[]>(state, lab.home, newLeader, ['node', 'ls']);
      return rows.find((row) => row.hostname === oldLeader)?.managerStatus === 'reachable' ? rows : undefined;
    });
    expect(nodes.filter((row) => row.managerStatus === 'leader').map((row) => row.hostname)).toEqual([newLeader]);
  });

  it('quorum loss: writes fail fast with what happened and how to recover', async () => {
    const [survivor, ...stopped] = ['h1', 'h2', 'h3'];
    await labKill(lab.name, 'h4');
    for (const host of stopped) await labKill(lab.name, host);
    const refused = await waitFor('the survivor to refuse writes', 30_000, async () => {
      const result = await via(state, lab.home, survivor!, ['service', 'create', '--detach', '--name', 'lost', 'demo/web:v1']);
      return result.code !== 0 && /no quorum/.test(result.stderr) ? result : undefined;
    }, 500);
    expect(refused.stderr).toMatch(/cannot write: no quorum/);
    expect(refused.stderr).toMatch(/--force-new-cluster/);
    // Reads too: the survivor cannot tell whether its store is current, so it does not answer from it.
    const unread = await via(state, lab.home, survivor!, ['service', 'ls']);
    expect(unread.code).not.toBe(0);
    expect(unread.stderr).toMatch(/cannot read: no quorum/);
    // Unless asked for what the survivor itself holds, to look around before recovering.
    const stale = await via(state, lab.home, survivor!, ['--stale', 'service', 'ls', '--format', 'json']);
    expect(stale.code, stale.stderr).toBe(0);
    expect((JSON.parse(stale.stdout) as ServiceRow[]).map((row) => row.name)).toContain('before');
    const staleNodes = await via(state, lab.home, survivor!, ['--stale', 'node', 'ls', '--format', 'json']);
    expect(staleNodes.code, staleNodes.stderr).toBe(0);
    expect((JSON.parse(staleNodes.stdout) as NodeRow[]).find((row) => row.hostname === survivor)?.managerStatus).toBe('reachable');
  });

  it('--force-new-cluster on the survivor brings the cluster back with every service', async () => {
    await labKill(lab.name, 'h1');
    await labStart(lab.name, 'h1', ['--force-new-cluster']);
    expect(await servicesOn(state, lab.home, 'h1')).toEqual(['after-failover', 'before']);
    await createThrough(state, lab.home, 'h1', 'reborn');
    expect(await servicesOn(state, lab.home, 'h1')).toEqual(['after-failover', 'before', 'reborn']);
    const nodes = await jsonVia<NodeRow[]>(state, lab.home, 'h1', ['node', 'ls']);
    expect(nodes.find((node) => node.hostname === 'h1')?.managerStatus).toBe('leader');
    expect(nodes.filter((node) => node.role === 'manager' && node.hostname !== 'h1').map((node) => node.managerStatus)).toEqual(['unreachable', 'unreachable']);
  });

  it('three-manager lab comes down without leftovers', async () => {
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});

describe('five managers, two partitioned away', () => {
  const lab = uniqueLab('ha5');
  labs.push(lab);
  let state: LabState;

  it('the majority keeps accepting writes, the minority refuses them, and after heal nothing acknowledged is lost', async () => {
    process.env['SKIFF_HOME'] = lab.home;
    state = await labUp({ name: lab.name, managers: 5, workers: 0 });
    await waitFor('five managers in the group', 90_000, async () => {
      const nodes = await jsonVia<NodeRow[]>(state, lab.home, 'h1', ['node', 'ls']);
      return nodes.filter((node) => node.managerStatus === 'leader' || node.managerStatus === 'reachable').length === 5 ? true : undefined;
    });
    // `node ls` shows learners as reachable too: wait until the four joiners vote, or the
    // "majority" below might hold a learner and have no quorum at all.
    await waitFor('four learners promoted to voters', 60_000, async () => (promotedMembers(state).size >= 4 ? true : undefined), 500);
    const acknowledged: string[] = [];
    await createThrough(state, lab.home, 'h3', 'before');
    acknowledged.push('before');
    // Put the leader in the minority, so the majority must elect a new one.
    const leader = await leaderSeenBy(state, lab.home, 'h1');
    const minority = [leader, ['h1', 'h2', 'h3', 'h4', 'h5'].find((host) => host !== leader)!];
    const majority = ['h1', 'h2', 'h3', 'h4', 'h5'].filter((host) => !minority.includes(host));
    await labPartition(lab.name, minority);

    for (const [index, host] of majority.entries()) {
      await createThrough(state, lab.home, host, `during-${index}`);
      acknowledged.push(`during-${index}`);
    }
    for (const host of minority) {
      const refused = await waitFor(`${host} to refuse writes`, 30_000, async () => {
        const result = await via(state, lab.home, host, ['service', 'create', '--detach', '--name', `minority-${host}`, 'demo/web:v1']);
        return result.code !== 0 && /no quorum/.test(result.stderr) ? result : undefined;
      }, 500);
      expect(refused.stderr).toMatch(/cannot write: no quorum/);
      // Nor does the minority answer reads from a store the majority has moved past.
      const unread = await waitFor(`${host} to refuse reads`, 30_000, async () => {
        const result = await via(state, lab.home, host, ['service', 'ls']);
        return result.code !== 0 ? result : undefined;
      }, 500);
      expect(unread.stderr).toMatch(/cannot read: no quorum/);
    }
    // A context that lists the minority first: the CLI moves past their refusals to a manager
    // that can read (a refused write stays final: it was checked through the sockets above).
    const minorityFirst = minorityFirstHome(lab.home, state, minority);
    const listed = await skiff(minorityFirst, ['service', 'ls', '--format', 'json'], 30_000);
    expect(listed.stderr).toBe('');
    expect((JSON.parse(listed.stdout) as ServiceRow[]).map((row) => row.name)).toContain('during-0');

    await labHeal(lab.name);
    const expected = [...acknowledged].sort();
    for (const host of ['h1', 'h2', 'h3', 'h4', 'h5']) {
      const seen = await waitFor(`${host} to hold every acknowledged write`, 30_000, async () => {
        const names = (await servicesOn(state, lab.home, host)).filter((name) => !name.startsWith('minority-'));
        return expected.every((name) => names.includes(name)) ? names : undefined;
      });
      expect(seen).toEqual(expected);
    }
    await labDown(lab.name);
    expect(await leftovers(lab.name)).toEqual([]);
  });
});
