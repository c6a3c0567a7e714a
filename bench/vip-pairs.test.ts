import { describe, expect, it } from 'vitest';
import { EPHEMERAL_PORTS, medianRatio, netstatCounter, pairOrder, pairRatios, portRange } from './vip-pairs.js';

describe('vip bench pairs', () => {
  it('port ranges: the two sides split the ephemeral range without overlap', () => {
    const [directFirst, directLast] = portRange('direct').split(' ').map(Number) as [number, number];
    const [vipFirst, vipLast] = portRange('vip').split(' ').map(Number) as [number, number];
    expect(directFirst).toBe(EPHEMERAL_PORTS.first);
    expect(vipLast).toBe(EPHEMERAL_PORTS.last);
    expect(vipFirst).toBe(directLast + 1);
    // Both halves are as large, within one port.
    expect(Math.abs(directLast - directFirst - (vipLast - vipFirst))).toBeLessThanOrEqual(1);
  });

  it('pair order alternates which side goes first', () => {
    expect([0, 1, 2, 3].map(pairOrder)).toEqual([
      ['direct', 'vip'],
      ['vip', 'direct'],
      ['direct', 'vip'],
      ['vip', 'direct'],
    ]);
  });

  it('netstat counter is read by name from the header line', () => {
    const text = 'TcpExt: SyncookiesSent TW TCPSynRetrans Other\nTcpExt: 0 44479 12 7\nIpExt: InNoRoutes\nIpExt: 3\n';
    expect(netstatCounter(text, 'TcpExt', 'TCPSynRetrans')).toBe(12);
    expect(netstatCounter(text, 'IpExt', 'InNoRoutes')).toBe(3);
    expect(() => netstatCounter(text, 'TcpExt', 'Missing')).toThrow(/no such counter/);
    expect(() => netstatCounter('', 'TcpExt', 'TW')).toThrow(/no TcpExt lines/);
  });

  it('pair ratios: the median is a measured ratio, the lower middle for an even count', () => {
    expect(pairRatios([100, 100, 100], [90, 50, 95])).toEqual({ ratios: [0.9, 0.5, 0.95], median: 0.9 });
    expect(pairRatios([100, 100, 100, 100], [90, 50, 95, 99]).median).toBe(0.9);
    expect(() => pairRatios([1, 2], [1])).toThrow(/cannot pair 2 direct with 1 VIP/);
    expect(medianRatio([1.234, 0.5, 2])).toBe(1.23);
  });
});
