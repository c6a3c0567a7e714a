// Network partitions between lab hosts (fault injection): `partition` cuts the named hosts off
// from every other lab host, both ways, with an nftables table inside each host's namespace;
// `heal` removes those tables. Traffic to the lab bridge itself (the CLI, the registry) is left
// alone, so an operator can still talk to a manager on either side of the cut.
import type { LabHost, LabState } from './state.js';
import { requireLab } from './lab-hosts.js';
import { run } from './system.js';

/** The nftables table a partition adds in each affected host; `heal` deletes it. */
export const PARTITION_TABLE = 'skiff_lab_partition';

function nftInHost(host: LabHost, script: string): Promise<{ code: number; stderr: string }> {
  return run('nsenter', [`--net=/var/run/netns/${host.netns}`, '--', 'nft', '-f', '-'], { input: script });
}

function partitionScript(peers: readonly string[]): string {
  const set = `{ ${peers.join(', ')} }`;
  return [
    `table inet ${PARTITION_TABLE} {`,
    '  chain input { type filter hook input priority -10; policy accept;',
    `    ip saddr ${set} drop`,
    '  }',
    '  chain output { type filter hook output priority -10; policy accept;',
    `    ip daddr ${set} drop`,
    '  }',
    '}',
  ].join('\n');
}

/** Cuts `hostNames` off from the other lab hosts, both ways. Replaces any earlier partition. */
export async function labPartition(name: string, hostNames: readonly string[]): Promise<void> {
  const state = await requireLab(name);
  const cut = new Set(hostNames);
  for (const hostName of cut) {
    if (!state.hosts.some((host) => host.name === hostName)) {
      throw new Error(`cannot partition: lab ${name} has no host "${hostName}" (hosts: ${state.hosts.map((host) => host.name).join(', ')})`);
    }
  }
  if (cut.size === 0 || cut.size === state.hosts.length) throw new Error('cannot partition: name some hosts, but not all of them');
  await labHeal(name);
  for (const host of state.hosts) {
    const inside = cut.has(host.name);
    const peers = state.hosts.filter((other) => cut.has(other.name) !== inside).map((other) => other.addr);
    const result = await nftInHost(host, partitionScript(peers));
    if (result.code !== 0) throw new Error(`cannot partition ${host.name}: nft: ${result.stderr.trim()}`);
  }
}

/** Removes every partition of the lab. Idempotent. */
export async function labHeal(name: string): Promise<void> {
  const state: LabState = await requireLab(name);
  for (const host of state.hosts) {
    const result = await nftInHost(host, `table inet ${PARTITION_TABLE}\ndelete table inet ${PARTITION_TABLE}\n`);
    if (result.code !== 0) throw new Error(`cannot heal ${host.name}: nft: ${result.stderr.trim()}`);
  }
}
