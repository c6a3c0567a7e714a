/** IPv4 subnet arithmetic for the host bridge. Pure. */

export interface Ipv4Subnet {
  /** Network address as an unsigned 32-bit integer. */
  network: number;
  prefixLength: number;
}

/** Longest prefix that still leaves a gateway and at least one container address. */
export const MAX_BRIDGE_PREFIX_LENGTH = 30;

/** Parses `a.b.c.d/n`; throws "cannot parse subnet ..." for anything else or host bits set. */
export function parseSubnet(cidr: string): Ipv4Subnet {
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(cidr.trim());
  const prefixLength = Number(match?.[2]);
  if (match?.[1] === undefined || prefixLength < 1 || prefixLength > MAX_BRIDGE_PREFIX_LENGTH) {
    throw new Error(`cannot parse subnet "${cidr}": expected a.b.c.d/n with n in 1..${MAX_BRIDGE_PREFIX_LENGTH}`);
  }
  const address = parseAddress(match[1]);
  const network = (address & prefixMask(prefixLength)) >>> 0;
  if (network !== address) throw new Error(`cannot parse subnet "${cidr}": host bits are set`);
  return { network, prefixLength };
}

export function parseAddress(text: string): number {
  const parts = text.split('.').map(Number);
  if (parts.length !== 4 || parts.some((part) => !Number.isInteger(part) || part < 0 || part > 255)) {
    throw new Error(`cannot parse IPv4 address "${text}"`);
  }
  return parts.reduce((value, part) => value * 256 + part, 0) >>> 0;
}

export function formatAddress(value: number): string {
  return [24, 16, 8, 0].map((shift) => (value >>> shift) & 255).join('.');
}

/** The bridge's own address: the first host address. */
export function gatewayAddress(subnet: Ipv4Subnet): number {
  return subnet.network + 1;
}

/** Addresses containers may take: after the gateway, before broadcast. */
export function containerAddressRange(subnet: Ipv4Subnet): { first: number; last: number } {
  const size = 2 ** (32 - subnet.prefixLength);
  return { first: subnet.network + 2, last: subnet.network + size - 2 };
}

export function containsAddress(subnet: Ipv4Subnet, address: number): boolean {
  return ((address & prefixMask(subnet.prefixLength)) >>> 0) === subnet.network;
}

function prefixMask(prefixLength: number): number {
  return prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
}
