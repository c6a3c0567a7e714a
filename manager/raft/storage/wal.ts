/**
 * A write-ahead log on local disk: segments of CRC-checked records, one record per committed
 * transaction, group-committed with one fdatasync per batch; snapshots with checksums bound
 * recovery time. Recovery truncates a torn tail and refuses corruption in the middle with an
 * error that names the file and offset.
 */
import { closeSync, fsyncSync, openSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';

/** The on-disk format version of a store directory. Bumped on any incompatible change. */
export const STORE_FORMAT = 'skiff-store 1';
const RECORD_HEADER_BYTES = 16; // u32 length, u32 crc, u64 index
const SNAPSHOT_MAGIC = 0x534b534e; // "SKSN"
const SNAPSHOT_HEADER_BYTES = 20; // u32 magic, u64 index, u32 crc, u32 length
/** Upper bound of one record's payload; larger is corruption, not data. */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
/** Snapshots kept on disk; older ones are deleted after a new one is durable. */
const SNAPSHOTS_KEPT = 2;

export interface WalRecord {
  index: number;
  payload: Uint8Array;
}

export interface RecoveredLog {
  snapshot: { index: number; payload: Uint8Array } | undefined;
  records: WalRecord[];
}

export class WalCorruptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(`cannot recover store: ${file} is corrupt at offset ${offset}: ${reason}`);
    this.name = 'WalCorruptionError';
  }
}

const segmentName = (firstIndex: number): string => `${String(firstIndex).padStart(16, '0')}.wal`;
const snapshotName = (index: number): string => `${String(index).padStart(16, '0')}.snap`;

function encodeRecord(record: WalRecord): Buffer {
  const buffer = Buffer.alloc(RECORD_HEADER_BYTES + record.payload.length);
  buffer.writeUInt32LE(record.payload.length, 0);
  buffer.writeBigUInt64LE(BigInt(record.index), 8);
  Buffer.from(record.payload.buffer, record.payload.byteOffset, record.payload.length).copy(buffer, RECORD_HEADER_BYTES);
  buffer.writeUInt32LE(crc32(buffer.subarray(8)), 4);
  return buffer;
}

/** Parses one segment; returns its records and, for a torn tail, the offset to truncate to. */
function decodeSegment(file: string, data: Buffer, isLast: boolean, strictOrder: boolean): { records: WalRecord[]; truncateAt?: number } {
  const records: WalRecord[] = [];
  let offset = 0;
  while (offset < data.length) {
    const remaining = data.length - offset;
    const length = remaining >= 4 ? data.readUInt32LE(offset) : -1;
    const end = offset + RECORD_HEADER_BYTES + Math.max(length, 0);
    const fits = remaining >= RECORD_HEADER_BYTES && length >= 0 && length <= MAX_RECORD_BYTES && end <= data.length;
    const valid = fits && data.readUInt32LE(offset + 4) === crc32(data.subarray(offset + 8, end));
    if (!valid) {
      // A bad record with nothing after it is a write torn by a crash: drop it. Anything
      // else means bytes we acknowledged are damaged, and guessing would lose writes.
      const tornTail = isLast && (!fits || end === data.length);
      if (tornTail) return { records, truncateAt: offset };
      throw new WalCorruptionError(file, offset, fits ? 'checksum mismatch' : 'record length out of range');
    }
    const index = Number(data.readBigUInt64LE(offset + 8));
    const previous = records.at(-1);
    if (strictOrder && previous !== undefined && index !== previous.index + 1) {
      throw new WalCorruptionError(file, offset, `index ${index} does not follow ${previous.index}`);
    }
    records.push({ index, payload: data.subarray(offset + RECORD_HEADER_BYTES, end) });
    offset = end;
  }
  return { records };
}

function fsyncDirectory(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

export interface WalOptions {
  /**
   * Records carry consecutive indexes (the store's log). Off for logs whose records may rewrite
   * a suffix (Raft), where the reader resolves overlaps itself.
   */
  strictOrder: boolean;
  /** The FORMAT line of this directory. */
  format: string;
}

/**
 * A directory of WAL segments and snapshot files. Records are framed with a length and a CRC;
 * snapshots carry a checksum. Not safe for two processes at once.
 */
export class LocalWal {
  private segment: FileHandle | undefined;

  constructor(
    private readonly dir: string,
    private readonly options: WalOptions = { strictOrder: true, format: STORE_FORMAT },
  ) {}

  /** Creates or checks the directory, then reads back the newest valid snapshot and every later record. */
  async recover(): Promise<RecoveredLog> {
    await mkdir(join(this.dir, 'wal'), { recursive: true });
    await mkdir(join(this.dir, 'snap'), { recursive: true });
    await this.checkFormat();
    const snapshot = await this.readNewestSnapshot();
    const segments = (await readdir(join(this.dir, 'wal'))).filter((f) => f.endsWith('.wal')).sort();
    const records: WalRecord[] = [];
    for (const [position, name] of segments.entries()) {
      const path = join(this.dir, 'wal', name);
      const decoded = decodeSegment(path, await readFile(path), position === segments.length - 1, this.options.strictOrder);
      if (decoded.truncateAt !== undefined) await truncate(path, decoded.truncateAt);
      for (const record of decoded.records) {
        const previous = records.at(-1);
        if (this.options.strictOrder && previous !== undefined && record.index !== previous.index + 1) {
          throw new WalCorruptionError(path, 0, `index ${record.index} does not follow ${previous.index}`);
        }
        records.push(record);
      }
    }
    if (!this.options.strictOrder) {
      await this.openLastSegment(segments.at(-1), 1);
      return { snapshot, records };
    }
    const afterSnapshot = records.filter((r) => r.index > (snapshot?.index ?? 0));
    const first = afterSnapshot[0];
    if (snapshot !== undefined && first !== undefined && first.index !== snapshot.index + 1) {
      throw new WalCorruptionError(join(this.dir, 'wal'), 0, `entries resume at ${first.index} after snapshot ${snapshot.index}`);
    }
    const lastIndex = afterSnapshot.at(-1)?.index ?? snapshot?.index ?? 0;
    await this.openLastSegment(segments.at(-1), lastIndex + 1);
    return { snapshot, records: afterSnapshot };
  }

  private async openLastSegment(lastSegment: string | undefined, firstIndex: number): Promise<void> {
    this.segment = await open(join(this.dir, 'wal', lastSegment ?? segmentName(firstIndex)), 'a');
  }

  /**
   * Appends records and, unless `sync` is false, makes them durable with one fdatasync (which
   * also covers earlier unsynced appends). Callers batch for group commit.
   */
  async append(records: WalRecord[], options: { sync: boolean } = { sync: true }): Promise<void> {
    if (this.segment === undefined) throw new Error('assertion failed: append before recover');
    await this.segment.writev(records.map(encodeRecord));
    if (options.sync) await this.segment.datasync();
  }

  /**
   * Writes a snapshot at `index`, starts a new segment after it holding `carryOver` (records
   * still needed after the snapshot, e.g. Raft entries past it and the hard state), and deletes
   * what the snapshot makes redundant. Ordering: the snapshot and the carried records are
   * durable (files and directories) before anything is deleted.
   */
  async writeSnapshot(index: number, payload: Uint8Array, carryOver: WalRecord[] = []): Promise<void> {
    const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES);
    header.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    header.writeBigUInt64LE(BigInt(index), 4);
    header.writeUInt32LE(crc32(payload), 12);
    header.writeUInt32LE(payload.length, 16);
    const snapDir = join(this.dir, 'snap');
    const temporary = join(snapDir, `${snapshotName(index)}.tmp`);
    const handle = await open(temporary, 'w');
    try {
      await handle.writev([header, payload]);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, join(snapDir, snapshotName(index)));
    fsyncDirectory(snapDir);
    await this.segment?.close();
    const walDir = join(this.dir, 'wal');
    this.segment = await open(join(walDir, segmentName(index + 1)), 'a');
    if (carryOver.length > 0) await this.append(carryOver);
    fsyncDirectory(walDir);
    for (const name of (await readdir(walDir)).filter((f) => f.endsWith('.wal') && f !== segmentName(index + 1))) {
      await rm(join(walDir, name));
    }
    const snapshots = (await readdir(snapDir)).filter((f) => f.endsWith('.snap')).sort();
    for (const name of snapshots.slice(0, Math.max(0, snapshots.length - SNAPSHOTS_KEPT))) await rm(join(snapDir, name));
  }

  async close(): Promise<void> {
    await this.segment?.close();
    this.segment = undefined;
  }

  private async checkFormat(): Promise<void> {
    const path = join(this.dir, 'FORMAT');
    const found = await readFile(path, 'utf8').catch(() => undefined);
    if (found === undefined) {
      await writeFile(path, `${this.options.format}\n`);
      fsyncDirectory(this.dir);
      return;
    }
    if (found.trim() !== this.options.format) {
      throw new Error(`cannot open ${this.dir}: format "${found.trim()}" is not "${this.options.format}"`);
    }
  }

  private async readNewestSnapshot(): Promise<RecoveredLog['snapshot']> {
    const snapDir = join(this.dir, 'snap');
    const names = (await readdir(snapDir)).filter((f) => f.endsWith('.snap')).sort().reverse();
    for (const name of names) {
      const path = join(snapDir, name);
      const data = await readFile(path);
      const valid =
        data.length >= SNAPSHOT_HEADER_BYTES &&
        data.readUInt32LE(0) === SNAPSHOT_MAGIC &&
        data.readUInt32LE(16) === data.length - SNAPSHOT_HEADER_BYTES &&
        data.readUInt32LE(12) === crc32(data.subarray(SNAPSHOT_HEADER_BYTES));
      if (!valid) {
        // An older snapshot plus the log still recovers everything, so a damaged newest one
        // is skipped rather than fatal; if the log no longer reaches back, recover() refuses.
        continue;
      }
      return { index: Number(data.readBigUInt64LE(4)), payload: data.subarray(SNAPSHOT_HEADER_BYTES) };
    }
    return undefined;
  }
}
