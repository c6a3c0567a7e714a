import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfState, Entry, HardState, LogIndex, MemberId, Term } from '../core/types.js';
import { RaftStorage } from './raft-storage.js';
import { WalCorruptionError } from './wal.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-raft-storage-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const conf: ConfState = { voters: ['a' as MemberId], learners: [] };
const entry = (index: number, term: number, text = `e${index}t${term}`): Entry => ({ index: index as LogIndex, term: term as Term, type: 'normal', data: new TextEncoder().encode(text) });
const hard = (term: number, commit: number, vote = 'a'): HardState => ({ term: term as Term, vote: vote as MemberId, commit: commit as LogIndex });
const summary = (entries: Entry[]) => entries.map((e) => `${e.index}@${e.term}`);

async function reopen(dir: string) {
  const storage = new RaftStorage(dir);
  const opened = await storage.open(conf);
  await storage.close();
  return opened;
}

describe('raft storage', () => {
  it('raft storage starts fresh from the bootstrap conf', async () => {
    const { initial, fresh } = await reopen(tempDir());
    expect(fresh).toBe(true);
    expect(initial.snapshot.meta).toEqual({ index: 0, term: 0, conf });
    expect(initial.entries).toEqual([]);
  });

  it('raft storage recovers entries and the newest hard state, with a rewritten suffix replacing the old one', async () => {
    const dir = tempDir();
    const storage = new RaftStorage(dir);
    await storage.open(conf);
    await storage.save(undefined, [entry(1, 1), entry(2, 1), entry(3, 1)], hard(1, 1));
    await storage.save(undefined, [entry(3, 2), entry(4, 2)], hard(2, 2));
    await storage.save(undefined, [], hard(2, 4));
    await storage.close();
    const { initial, fresh } = await reopen(dir);
    expect(fresh).toBe(false);
    expect(summary(initial.entries)).toEqual(['1@1', '2@1', '3@2', '4@2']);
    expect(initial.hardState).toEqual(hard(2, 4));
  });

  it('raft storage compaction keeps the snapshot, the tail after it and the hard state', async () => {
    const dir = tempDir();
    const storage = new RaftStorage(dir);
    await storage.open(conf);
    await storage.save(undefined, [1, 2, 3, 4, 5].map((i) => entry(i, 1)), hard(1, 5));
    await storage.compact({ meta: { index: 3 as LogIndex, term: 1 as Term, conf }, data: new TextEncoder().encode('state@3') }, [entry(4, 1), entry(5, 1)]);
    await storage.save(undefined, [entry(6, 1)], hard(1, 6));
    await storage.close();
    expect(readdirSync(join(dir, 'wal'))).toHaveLength(1);
    const { initial } = await reopen(dir);
    expect(initial.snapshot.meta.index).toBe(3);
    expect(new TextDecoder().decode(initial.snapshot.data)).toBe('state@3');
    expect(initial.applied).toBe(3);
    expect(summary(initial.entries)).toEqual(['4@1', '5@1', '6@1']);
    expect(initial.hardState).toEqual(hard(1, 6));
  });

  it('raft storage installs a received snapshot in place of the old log', async () => {
    const dir = tempDir();
    const storage = new RaftStorage(dir);
    await storage.open(conf);
    await storage.save(undefined, [entry(1, 1), entry(2, 1)], hard(1, 1));
    await storage.save({ meta: { index: 10 as LogIndex, term: 3 as Term, conf }, data: new Uint8Array([7]) }, [], hard(3, 10));
    await storage.close();
    const { initial } = await reopen(dir);
    expect(initial.snapshot.meta).toMatchObject({ index: 10, term: 3 });
    expect(initial.entries).toEqual([]);
    expect(initial.hardState).toEqual(hard(3, 10));
  });

  it('raft storage truncates a torn tail and refuses corruption in the middle', async () => {
    const dir = tempDir();
    const storage = new RaftStorage(dir);
    await storage.open(conf);
    await storage.save(undefined, [entry(1, 1)], hard(1, 1));
    await storage.save(undefined, [entry(2, 1)], hard(1, 2));
    await storage.close();
    const segment = join(dir, 'wal', readdirSync(join(dir, 'wal'))[0]!);
    appendFileSync(segment, Buffer.from([200, 0, 0, 0, 9, 9]));
    expect(summary((await reopen(dir)).initial.entries)).toEqual(['1@1', '2@1']);
    const data = readFileSync(segment);
    data[18] = data[18]! ^ 0xff;
    writeFileSync(segment, data);
    await expect(reopen(dir)).rejects.toBeInstanceOf(WalCorruptionError);
    await expect(reopen(dir)).rejects.toThrow(`${segment} is corrupt at offset 0`);
  });
});

describe('raft storage sync rule', () => {
  it('raft storage syncs for entries, a new term or a new vote, but not for a commit-only change', async () => {
    const { mustSync } = await import('./raft-storage.js');
    expect(mustSync(hard(1, 1), hard(1, 5), [])).toBe(false);
    expect(mustSync(hard(1, 1), undefined, [])).toBe(false);
    expect(mustSync(hard(1, 1), hard(1, 1), [entry(2, 1)])).toBe(true);
    expect(mustSync(hard(1, 1), hard(2, 1), [])).toBe(true);
    expect(mustSync(hard(1, 1, 'a'), hard(1, 1, 'b'), [])).toBe(true);
  });
});

describe('raft storage snapshots', () => {
  it('raft storage refuses to start when the newest snapshot is damaged and the log no longer reaches back', async () => {
    const dir = tempDir();
    const storage = new RaftStorage(dir);
    await storage.open(conf);
    await storage.save(undefined, [1, 2, 3].map((i) => entry(i, 1)), hard(1, 3));
    await storage.compact({ meta: { index: 2 as LogIndex, term: 1 as Term, conf }, data: new Uint8Array([2]) }, [entry(3, 1)]);
    await storage.save(undefined, [4, 5, 6].map((i) => entry(i, 1)), hard(1, 6));
    await storage.compact({ meta: { index: 5 as LogIndex, term: 1 as Term, conf }, data: new Uint8Array([5]) }, [entry(6, 1)]);
    await storage.close();
    const newest = join(dir, 'snap', readdirSync(join(dir, 'snap')).sort().at(-1)!);
    const data = readFileSync(newest);
    data[data.length - 1] = data[data.length - 1]! ^ 0xff;
    writeFileSync(newest, data);
    await expect(reopen(dir)).rejects.toThrow(/log resumes at index 6, but the newest readable snapshot ends at 2/);
  });
});
