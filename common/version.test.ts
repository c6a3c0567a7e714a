import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { SKIFF_VERSION } from './version.js';

describe('SKIFF_VERSION', () => {
  it('is the version package.json gives', () => {
    const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    expect(SKIFF_VERSION).toBe(manifest.version);
  });
});
