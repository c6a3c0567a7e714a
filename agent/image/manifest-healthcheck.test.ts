import { describe, expect, it } from 'vitest';
import { parseImageConfig } from './manifest.js';

const DIFF_ID = `sha256:${'a'.repeat(64)}`;
const configBytes = (config: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ config, rootfs: { type: 'layers', diff_ids: [DIFF_ID] } }));

describe('image config healthcheck', () => {
  it('image config keeps HEALTHCHECK with durations from nanoseconds to milliseconds', () => {
    const parsed = parseImageConfig(configBytes({ Cmd: ['httpd'], Healthcheck: { Test: ['CMD-SHELL', 'wget -q http://localhost/'], Interval: 5_000_000_000, Timeout: 2_000_000_000, StartPeriod: 500_000_000, Retries: 4 } }), 'demo/web:v1');
    expect(parsed.run.healthcheck).toEqual({ test: ['CMD-SHELL', 'wget -q http://localhost/'], intervalMs: 5_000, timeoutMs: 2_000, startPeriodMs: 500, retries: 4 });
  });

  it('image config has no healthcheck when the image declares none or an empty test', () => {
    expect(parseImageConfig(configBytes({ Cmd: ['httpd'] }), 'x').run).not.toHaveProperty('healthcheck');
    expect(parseImageConfig(configBytes({ Healthcheck: { Test: [] } }), 'x').run).not.toHaveProperty('healthcheck');
    expect(parseImageConfig(configBytes({ Healthcheck: { Test: ['NONE'] } }), 'x').run.healthcheck).toMatchObject({ test: ['NONE'], retries: 0 });
  });

  it('image config refuses a malformed HEALTHCHECK, naming the field', () => {
    expect(() => parseImageConfig(configBytes({ Healthcheck: { Test: 'CMD true' } }), 'x')).toThrow('config field Healthcheck.Test is not an array of strings');
    expect(() => parseImageConfig(configBytes({ Healthcheck: { Test: ['CMD', 'true'], Interval: -1 } }), 'x')).toThrow('config field Healthcheck.Interval is not a non-negative integer');
  });
});
