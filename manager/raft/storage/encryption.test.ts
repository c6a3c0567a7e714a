import { randomBytes } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { ConfState, Entry, HardState, LogIndex, MemberId, Term } from '../core/types.js';
import { RAFT_FORMAT_ENCRYPTED, RaftStorage, raftDirectoryEncryption } from './raft-storage.js';
import { LocalWal, STORE_FORMAT_ENCRYPTED, WalCorruptionError, WalDecryptionError } from './wal.js';

const dirs: string[] = [];
const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-raft-encryption-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const MARKER = 'PLAINTEXT-MARKER-7f3a9c';
const conf: ConfState = { voters: ['a' as MemberId], learners: [] };
const entry = (index: number, term: number, text = `${MARKER} e${index}t${term}`): Entry => ({ index: index as LogIndex, term: term as Term, type: 'normal', data: new TextEncoder().encode(text) });
const hard = (term: number, commit: number): HardState => ({ term: term as Term, vote: 'a' as MemberId, commit: commit as LogIndex });
const summary = (entries: Entry[]) => entries.map((e) => `${e.index}@${e.term}`);
const snapshotData = new TextEncoder().encode(`${MARKER} state`);

async function reopen(dir: string, dataKey: Buffer | undefined) {
  const storage = new RaftStorage(dir, dataKey === undefined ? {} : { dataKey });
  const opened = await storage.open(conf);
  await storage.close();
  return opened;
}

/** Writes entries 1..4 (two records), a snapshot at 2 and entry 5 after it. */
async function writeSample(dir: string, dataKey: Buffer | undefined): Promise<void> {
  const storage = new RaftStorage(dir, dataKey === undefined ? {} : { dataKey });
  await storage.open(conf);
  await storage.save(undefined, [entry(1, 1), entry(2, 1)], hard(1, 2));
  await storage.save(undefined, [entry(3, 1), entry(4, 1)], hard(1, 4));
  await storage.compact({ meta: { index: 2 as LogIndex, term: 1 as Term, conf }, data: snapshotData }, [entry(3, 1), entry(4, 1)]);
  await storage.save(undefined, [entry(5, 1)], hard(1, 5));
  await storage.close();
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).map((name) => join(dir, name)).filter((path) => statSync(path).isFile());
}

const onlySegment = (dir: string): string => join(dir, 'wal', readdirSync(join(dir, 'wal'))[0]!);
const recordEnd = (data: Buffer, offset: number): number => offset + 16 + data.readUInt32LE(offset);

describe('raft storage with a data key', () => {
  it('raft storage with a data key round-trips entries, hard state and snapshots', async () => {
    const dir = tempDir();
    const key = randomBytes(32);
    await writeSample(dir, key);
    const { initial } = await reopen(dir, key);
    expect(initial.snapshot.meta.index).toBe(2);
    expect(Buffer.from(initial.snapshot.data).equals(snapshotData)).toBe(true);
    expect(summary(initial.entries)).toEqual(['3@1', '4@1', '5@1']);
    expect(new TextDecoder().decode(initial.entries[2]!.data)).toBe(`${MARKER} e5t1`);
    expect(initial.hardState).toEqual(hard(1, 5));
    expect(readFileSync(join(dir, 'FORMAT'), 'utf8').trim()).toBe(RAFT_FORMAT_ENCRYPTED);
    expect(await raftDirectoryEncryption(dir)).toBe('encrypted');
  });

  it('raft storage with a data key leaves no plaintext in the files on disk', async () => {
    const plain = tempDir();
    await writeSample(plain, undefined);
    const marker = Buffer.from(MARKER);
    // The check can see the marker at all: without a key, WAL and snapshot both hold it.
    expect(filesUnder(plain).filter((path) => readFileSync(path).includes(marker)).map((path) => path.split('/').at(-2))).toEqual(expect.arrayContaining(['wal', 'snap']));
    const sealed = tempDir();
    await writeSample(sealed, randomBytes(32));
    expect(filesUnder(sealed).filter((path) => readFileSync(path).includes(marker))).toEqual([]);
  });

  it('raft storage with the wrong data key names the file and offset it cannot decrypt', async () => {
    const dir = tempDir();
    const storage = new RaftStorage(dir, { dataKey: randomBytes(32) });
    await storage.open(conf);
    await storage.save(undefined, [entry(1, 1)], hard(1, 1));
    await storage.close();
    const opening = reopen(dir, randomBytes(32));
    await expect(opening).rejects.toBeInstanceOf(WalDecryptionError);
    await expect(opening).rejects.toThrow(`cannot decrypt ${onlySegment(dir)} at offset 0: wrong data key or tampered record`);
  });

  it('raft storage with the wrong data key refuses the snapshot rather than falling back to an older one', async () => {
    const dir = tempDir();
    await writeSample(dir, randomBytes(32));
    const snapshot = join(dir, 'snap', readdirSync(join(dir, 'snap'))[0]!);
    await expect(reopen(dir, randomBytes(32))).rejects.toThrow(`cannot decrypt ${snapshot} at offset 20`);
  });

  it('raft storage with a data key still truncates a torn tail and refuses corruption in the middle', async () => {
    const dir = tempDir();
    const key = randomBytes(32);
    const storage = new RaftStorage(dir, { dataKey: key });
    await storage.open(conf);
    await storage.save(undefined, [entry(1, 1)], hard(1, 1));
    await storage.save(undefined, [entry(2, 1)], hard(1, 2));
    await storage.close();
    const segment = onlySegment(dir);
    const intact = readFileSync(segment);
    appendFileSync(segment, Buffer.from([200, 0, 0, 0, 9, 9]));
    expect(summary((await reopen(dir, key)).initial.entries)).toEqual(['1@1', '2@1']);
    expect(readFileSync(segment)).toEqual(intact);
    // Appends after the truncation land where the torn record was, and bind that offset.
    const again = new RaftStorage(dir, { dataKey: key });
    await again.open(conf);
    await again.save(undefined, [entry(3, 1)], hard(1, 3));
    await again.close();
    expect(summary((await reopen(dir, key)).initial.entries)).toEqual(['1@1', '2@1', '3@1']);
    const data = readFileSync(segment);
    data[30] = data[30]! ^ 0xff;
    writeFileSync(segment, data);
    const opening = reopen(dir, key);
    await expect(opening).rejects.toBeInstanceOf(WalCorruptionError);
    await expect(opening).rejects.toThrow(`${segment} is corrupt at offset 0: checksum mismatch`);
  });

  it('raft storage with a data key refuses a record moved to another offset even when its checksum holds', async () => {
    const dir = tempDir();
    const key = randomBytes(32);
    const storage = new RaftStorage(dir, { dataKey: key });
    await storage.open(conf);
    await storage.save(undefined, [], hard(1, 0));
    await storage.save(undefined, [], hard(2, 0));
    await storage.close();
    const segment = onlySegment(dir);
    const data = readFileSync(segment);
    const second = recordEnd(data, 0);
    expect(recordEnd(data, second)).toBe(data.length);
    // Swapping two records of equal size keeps every CRC valid: rolling back a term this way
    // must be caught by the tag, which binds each record to its offset.
    const swapped = Buffer.concat([data.subarray(second), data.subarray(0, second)]);
    expect(swapped.length).toBe(data.length);
    writeFileSync(segment, swapped);
    await expect(reopen(dir, key)).rejects.toThrow(`cannot decrypt ${segment} at offset 0: wrong data key or tampered record`);
  });

  it('raft storage refuses an encrypted directory without a key and a plaintext one with a key', async () => {
    const encrypted = tempDir();
    await writeSample(encrypted, randomBytes(32));
    await expect(reopen(encrypted, undefined)).rejects.toThrow(`cannot open ${encrypted}: it is encrypted at rest (format "${RAFT_FORMAT_ENCRYPTED}") and no data key was given`);
    const plaintext = tempDir();
    await writeSample(plaintext, undefined);
    expect(await raftDirectoryEncryption(plaintext)).toBe('plaintext');
    await expect(reopen(plaintext, randomBytes(32))).rejects.toThrow(`cannot open ${plaintext}: it is not encrypted (format "skiff-raft 1") but a data key was given`);
    expect(await raftDirectoryEncryption(join(plaintext, 'missing'))).toBe('new');
  });

  it('raft storage refuses a data key that is not 32 bytes', () => {
    expect(() => new RaftStorage(tempDir(), { dataKey: randomBytes(16) })).toThrow('cannot use data key: it is 16 bytes, not 32');
  });
});

describe('local wal with a data key', () => {
  it('local wal with a data key round-trips a strictly ordered log across a snapshot', async () => {
    const dir = tempDir();
    const key = randomBytes(32);
    const options = { strictOrder: true, format: 'skiff-store 1', encryptedFormat: STORE_FORMAT_ENCRYPTED, dataKey: key };
    const payload = (text: string) => new TextEncoder().encode(`${MARKER} ${text}`);
    const wal = new LocalWal(dir, options);
    await wal.recover();
    await wal.append([1, 2, 3].map((index) => ({ index, payload: payload(`r${index}`) })));
    await wal.writeSnapshot(3, payload('snap3'));
    await wal.append([{ index: 4, payload: payload('r4') }]);
    await wal.close();
    const again = new LocalWal(dir, options);
    const recovered = await again.recover();
    await again.close();
    expect(recovered.snapshot?.index).toBe(3);
    expect(Buffer.from(recovered.snapshot!.payload).toString()).toBe(`${MARKER} snap3`);
    expect(recovered.records.map((r) => [r.index, Buffer.from(r.payload).toString()])).toEqual([[4, `${MARKER} r4`]]);
    expect(filesUnder(dir).filter((path) => readFileSync(path).includes(Buffer.from(MARKER)))).toEqual([]);
  });

  it('local wal refuses overlapping writes', async () => {
    const wal = new LocalWal(tempDir(), { strictOrder: false, format: 'test 1', dataKey: randomBytes(32) });
    await wal.recover();
    const first = wal.append([{ index: 1, payload: new Uint8Array([1]) }]);
    await expect(wal.append([{ index: 2, payload: new Uint8Array([2]) }])).rejects.toThrow(/overlapping writes/);
    await first;
    await wal.close();
  });
});
