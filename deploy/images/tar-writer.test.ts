import { mkdir, mkdtemp, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tar from 'tar';
import { describe, expect, it } from 'vitest';
import { writeTar } from './tar-writer.js';

describe('tar writer', () => {
  it('writeTar output extracts with modes, symlinks and content intact', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'skiff-tar-writer-'));
    try {
      const longName = `${'d'.repeat(60)}/${'e'.repeat(60)}/file.txt`;
      const bytes = writeTar(
        [
          { kind: 'directory', path: 'bin', mode: 0o755 },
          { kind: 'file', path: 'bin/tool', mode: 0o750, content: Buffer.from('#!/bin/sh\n') },
          { kind: 'symlink', path: 'bin/alias', target: 'tool' },
          { kind: 'directory', path: 'tmp', mode: 0o1777 },
          { kind: 'file', path: longName, mode: 0o644, content: Buffer.alloc(513, 'x') },
        ],
        946_684_800,
      );
      expect(bytes.length % 512).toBe(0);
      await writeFile(join(dir, 'layer.tar'), bytes);
      const out = join(dir, 'out');
      await mkdir(out);
      await tar.x({ file: join(dir, 'layer.tar'), cwd: out, strict: true, chmod: true, processUmask: 0 });
      expect((await stat(join(out, 'bin/tool'))).mode & 0o7777).toBe(0o750);
      const modes = new Map<string, number>();
      const parser = new tar.Parser({ onReadEntry: (entry) => (modes.set(entry.path, entry.mode ?? 0), entry.resume()) });
      await new Promise<void>((resolve, reject) => parser.on('end', resolve).on('error', reject).end(bytes));
      expect(modes.get('tmp/')).toBe(0o1777);
      expect(modes.get(longName)).toBe(0o644);
      expect(await readlink(join(out, 'bin/alias'))).toBe('tool');
      expect(await readFile(join(out, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\n');
      expect((await readFile(join(out, longName))).length).toBe(513);
      expect((await stat(join(out, 'bin/tool'))).mtimeMs).toBe(946_684_800_000);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('writeTar refuses paths that escape the layer', () => {
    expect(() => writeTar([{ kind: 'file', path: '../etc/passwd', mode: 0o644, content: Buffer.alloc(0) }], 0)).toThrow(/must be relative/);
    expect(() => writeTar([{ kind: 'directory', path: '/abs', mode: 0o755 }], 0)).toThrow(/must be relative/);
  });
});
