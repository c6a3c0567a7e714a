/**
 * The pure part of bench/vip.ts and vip-load.ts: which half of the ephemeral port range each side
 * uses, the order of the sides in each pair, reading a counter out of /proc/net/netstat, and the
 * summary of interleaved direct/VIP measurements (the median of the per-pair ratios, not the ratio
 * of sums, so a pair slowed by other load on the shared machine moves one ratio, not the result).
 */
import { percentile } from './stats.js';

export type Side = 'direct' | 'vip';

/** The ephemeral port range of the client's network namespace (the kernel's default). */
export const EPHEMERAL_PORTS = { first: 32768, last: 60999 } as const;

/**
 * The client's source ports for one side: direct the lower half, VIP the upper half. Both sides
 * reach the same backend from the same client address, so without a split a connection of one
 * side reuses a port whose previous connection (of the other side) is still in TIME_WAIT on the
 * backend. The client's TCP derives initial sequence numbers and timestamps from the destination
 * it connected to (the task's address or the VIP), so the backend sees them jump and answers the
 * SYN with a challenge ACK: a reset and a SYN retransmit later, each such connection costs about
 * 10 ms more. That is a cost of running both sides against one backend, not of either path: with
 * the split, each side only ever meets its own TIME_WAIT entries, as it would running alone.
 */
export function portRange(side: Side): string {
  const middle = Math.floor((EPHEMERAL_PORTS.first + EPHEMERAL_PORTS.last) / 2);
  return side === 'direct' ? `${EPHEMERAL_PORTS.first} ${middle}` : `${middle + 1} ${EPHEMERAL_PORTS.last}`;
}

/** The order of the two sides in pair `index` (0-based): direct first in even pairs, VIP first in odd ones. */
export function pairOrder(index: number): [Side, Side] {
  return index % 2 === 0 ? ['direct', 'vip'] : ['vip', 'direct'];
}

/** Counter `name` of group `group` (e.g. TcpExt, TCPSynRetrans) in the text of /proc/net/netstat. */
export function netstatCounter(text: string, group: string, name: string): number {
  const lines = text.split('\n').filter((line) => line.startsWith(`${group}:`));
  const [header, values] = lines;
  if (header === undefined || values === undefined) throw new Error(`cannot read ${group}.${name}: no ${group} lines in /proc/net/netstat`);
  const index = header.split(/\s+/).indexOf(name);
  const value = values.split(/\s+/)[index];
  if (index < 1 || value === undefined) throw new Error(`cannot read ${group}.${name}: no such counter in /proc/net/netstat`);
  return Number(value);
}

const round = (value: number, digits: number): number => Math.round(value * 10 ** digits) / 10 ** digits;

/**
 * Per-pair VIP/direct ratios of `value` (rate or throughput; pairs measured back to back) and their
 * median: the lower middle one for an even count (nearest rank), so the result is a ratio that was
 * measured and never flatters the VIP.
 */
export function pairRatios(direct: readonly number[], vip: readonly number[]): { ratios: number[]; median: number } {
  if (direct.length !== vip.length || direct.length === 0) throw new Error(`cannot pair ${direct.length} direct with ${vip.length} VIP passes`);
  const ratios = direct.map((reference, index) => round((vip[index] ?? 0) / Math.max(1, reference), 3));
  return { ratios, median: medianRatio(ratios) };
}

/** The median of per-pair ratios, nearest rank (see pairRatios), to 2 digits. */
export function medianRatio(ratios: readonly number[]): number {
  return round(percentile(ratios, 50), 2);
}
