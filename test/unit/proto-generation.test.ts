import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const generatedDir = join(import.meta.dirname, '../../proto/skiff/v1');

describe('proto generation', () => {
  it('committed TypeScript matches a fresh generation from the .proto files', () => {
    const out = mkdtempSync(join(tmpdir(), 'skiff-proto-'));
    try {
      execFileSync('bash', [join(import.meta.dirname, '../../proto/generate.sh'), out], { stdio: 'pipe' });
      const fresh = readdirSync(join(out, 'skiff/v1')).filter((f) => f.endsWith('.ts')).sort();
      const committed = readdirSync(generatedDir).filter((f) => f.endsWith('.ts')).sort();
      expect(fresh).toEqual(committed);
      for (const file of fresh) {
        expect(readFileSync(join(out, 'skiff/v1', file), 'utf8'), file).toBe(readFileSync(join(generatedDir, file), 'utf8'));
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
