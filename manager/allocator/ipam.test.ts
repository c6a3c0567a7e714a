import { describe, expect, it } from 'vitest';
import { addressAt, CidrError, formatCidr, formatIpv4, nextFreeOffset, nextFreeSubnet, offsetOf, overlaps, parseCidr, parseIpv4 } from './ipam.js';

describe('ipam', () => {
  it('parses and formats IPv4 addresses and CIDRs', () => {
    expect(parseIpv4('10.0.1.7')).toBe(10 * 2 ** 24 + 1 * 256 + 7);
    expect(formatIpv4(parseIpv4('198.19.255.254'))).toBe('198.19.255.254');
    expect(formatCidr(parseCidr('10.0.0.0/8'))).toBe('10.0.0.0/8');
    for (const bad of ['10.0.0', '10.0.0.256', '10.0.0.01', 'a.b.c.d']) expect(() => parseIpv4(bad)).toThrow(CidrError);
    expect(() => parseCidr('10.0.1.5/24')).toThrow('has host bits set: the network address of a /24 there is 10.0.1.0');
    expect(() => parseCidr('10.0.0.0/33')).toThrow('prefix length');
    expect(() => parseCidr('10.0.0.0')).toThrow('not a CIDR');
  });

  it('cuts the lowest free subnet from the pool, skipping taken blocks of any size', () => {
    const pool = parseCidr('10.0.0.0/16');
    expect(formatCidr(nextFreeSubnet(pool, 24, [])!)).toBe('10.0.0.0/24');
    expect(formatCidr(nextFreeSubnet(pool, 24, [parseCidr('10.0.0.0/24'), parseCidr('10.0.1.0/24')])!)).toBe('10.0.2.0/24');
    // A /23 taken in the middle is skipped whole; a hole before it is used first.
    expect(formatCidr(nextFreeSubnet(pool, 24, [parseCidr('10.0.0.0/24'), parseCidr('10.0.2.0/23')])!)).toBe('10.0.1.0/24');
    expect(formatCidr(nextFreeSubnet(pool, 24, [parseCidr('10.0.0.0/24'), parseCidr('10.0.1.0/24'), parseCidr('10.0.2.0/23')])!)).toBe('10.0.4.0/24');
    // A small block taken inside a /24 makes the whole /24 unusable.
    expect(formatCidr(nextFreeSubnet(pool, 24, [parseCidr('10.0.0.128/28')])!)).toBe('10.0.1.0/24');
    // Blocks outside the pool do not matter; a full pool gives nothing.
    expect(formatCidr(nextFreeSubnet(pool, 24, [parseCidr('192.168.0.0/16')])!)).toBe('10.0.0.0/24');
    expect(nextFreeSubnet(parseCidr('10.0.0.0/23'), 24, [parseCidr('10.0.0.0/24'), parseCidr('10.0.1.0/24')])).toBeUndefined();
    expect(nextFreeSubnet(parseCidr('10.0.0.0/24'), 16, [])).toBeUndefined();
  });

  it('hands out host addresses after the gateway, from a cursor, wrapping once', () => {
    const subnet = parseCidr('10.0.1.0/29'); // offsets 2..6 are for tasks
    expect(nextFreeOffset(subnet, new Set(), 0)).toBe(2);
    expect(nextFreeOffset(subnet, new Set([2, 3]), 0)).toBe(4);
    expect(nextFreeOffset(subnet, new Set([5]), 5)).toBe(6);
    expect(nextFreeOffset(subnet, new Set([6]), 6)).toBe(2);
    expect(nextFreeOffset(subnet, new Set([2, 3, 4, 5, 6]), 3)).toBeUndefined();
    expect(addressAt(subnet, 6)).toBe('10.0.1.6/29');
    expect(offsetOf(subnet, '10.0.1.6/29')).toBe(6);
    expect(offsetOf(subnet, '10.0.2.6/29')).toBeUndefined();
    expect(overlaps(parseCidr('10.0.0.0/16'), parseCidr('10.0.200.0/24'))).toBe(true);
    expect(overlaps(parseCidr('10.0.0.0/24'), parseCidr('10.0.1.0/24'))).toBe(false);
  });
});
