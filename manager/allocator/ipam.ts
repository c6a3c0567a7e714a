/**
 * IPv4 address arithmetic for the allocator: CIDR parsing, cutting subnets from the cluster's
 * address pool, and host addresses inside a subnet. Pure; addresses are unsigned 32-bit numbers.
 */

export interface Cidr {
  /** The network address (host bits zero). */
  base: number;
  prefix: number;
}

export class CidrError extends Error {}

/** "10.0.1.7" -> number; throws CidrError naming the text. */
export function parseIpv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((part) => !/^(0|[1-9]\d{0,2})$/.test(part) || Number(part) > 255)) {
    throw new CidrError(`"${text}" is not an IPv4 address`);
  }
  return parts.reduce((value, part) => value * 256 + Number(part), 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Number of addresses in a /prefix. */
export function blockSize(prefix: number): number {
  return 2 ** (32 - prefix);
}

/**
 * "10.0.0.0/8" -> Cidr. The address must be the network address (no host bits set), so a typo
 * like 10.0.1.5/24 is reported rather than silently widened.
 */
export function parseCidr(text: string): Cidr {
  const [address, prefixText, extra] = text.trim().split('/');
  if (address === undefined || prefixText === undefined || extra !== undefined || !/^\d{1,2}$/.test(prefixText)) {
    throw new CidrError(`"${text}" is not a CIDR such as 10.0.0.0/8`);
  }
  const prefix = Number(prefixText);
  if (prefix > 32) throw new CidrError(`"${text}": the prefix length must be 0 to 32`);
  const base = parseIpv4(address);
  if (base % blockSize(prefix) !== 0) {
    throw new CidrError(`"${text}" has host bits set: the network address of a /${prefix} there is ${formatIpv4(base - (base % blockSize(prefix)))}`);
  }
  return { base, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIpv4(cidr.base)}/${cidr.prefix}`;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + blockSize(b.prefix) && b.base < a.base + blockSize(a.prefix);
}

export function contains(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && inner.base >= outer.base && inner.base + blockSize(inner.prefix) <= outer.base + blockSize(outer.prefix);
}

/**
 * The first /size block of `pool` that overlaps none of `taken`, or undefined when the pool is
 * full. Blocks are tried in address order; a taken block larger than /size skips all of it.
 */
export function nextFreeSubnet(pool: Cidr, size: number, taken: readonly Cidr[]): Cidr | undefined {
  if (size < pool.prefix || size > 30) return undefined;
  const step = blockSize(size);
  const end = pool.base + blockSize(pool.prefix);
  const sorted = [...taken].filter((cidr) => overlaps(cidr, pool)).sort((a, b) => a.base - b.base);
  let candidate = pool.base;
  for (const used of sorted) {
    const usedEnd = used.base + blockSize(used.prefix);
    if (candidate + step <= used.base) break;
    if (usedEnd > candidate) candidate = Math.ceil(usedEnd / step) * step;
    if (candidate >= end) return undefined;
  }
  return candidate + step <= end ? { base: candidate, prefix: size } : undefined;
}

/**
 * Host addresses of a subnet, as offsets from its base: 1 is the gateway (each host's bridge),
 * so tasks and VIPs get 2 .. size-2 (the last address is the broadcast address).
 */
export const GATEWAY_OFFSET = 1;
export const FIRST_HOST_OFFSET = 2;

export function lastHostOffset(subnet: Cidr): number {
  return blockSize(subnet.prefix) - 2;
}

/**
 * The lowest free host offset at or after `from` (wrapping once), skipping `used`; undefined
 * when the subnet is full. Starting after the last allocation avoids handing a just-freed
 * address straight to the next task (its old holder may still be tearing down).
 */
export function nextFreeOffset(subnet: Cidr, used: ReadonlySet<number>, from: number): number | undefined {
  const first = FIRST_HOST_OFFSET;
  const last = lastHostOffset(subnet);
  if (last < first) return undefined;
  const start = from < first || from > last ? first : from;
  for (let offset = start; offset <= last; offset += 1) if (!used.has(offset)) return offset;
  for (let offset = first; offset < start; offset += 1) if (!used.has(offset)) return offset;
  return undefined;
}

/** "10.0.1.7/24" within subnet -> offset 7; undefined when it is not inside the subnet. */
export function offsetOf(subnet: Cidr, address: string): number | undefined {
  const [ip] = address.split('/');
  let value: number;
  try {
    value = parseIpv4(ip ?? '');
  } catch {
    return undefined;
  }
  const offset = value - subnet.base;
  return offset >= 0 && offset < blockSize(subnet.prefix) ? offset : undefined;
}

/** The CIDR-form address of a host offset, e.g. 10.0.1.7/24. */
export function addressAt(subnet: Cidr, offset: number): string {
  return `${formatIpv4(subnet.base + offset)}/${subnet.prefix}`;
}
