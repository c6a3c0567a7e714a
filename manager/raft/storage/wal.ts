/**
 * A write-ahead log on local disk: segments of CRC-checked records, one record per committed
 * transaction, group-committed with one fdatasync per batch; snapshots with checksums bound
 * recovery time. Recovery truncates a torn tail and refuses corruption in the middle with an
 * error that names the file and offset. With a data key, every record and snapshot payload is
 * sealed with AES-256-GCM (record-cipher.ts); the CRC covers the sealed bytes, so torn tails and
 * damage are found exactly as without a key, and a tag that fails is refused, never truncated.
 */
import { closeSync, fsyncSync, openSync, writevSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, truncate, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { NONCE_BYTES, PayloadCipher, SEAL_OVERHEAD_BYTES, snapshotAad, walRecordAad, type RecordPlace } from './record-cipher.js';

/** The on-disk format version of a store directory. Bumped on any incompatible change. */
export const STORE_FORMAT = 'skiff-store 1';
/** The same, with every payload encrypted under a data key. */
export const STORE_FORMAT_ENCRYPTED = 'skiff-store 2 encrypted';
const RECORD_HEADER_BYTES = 16; // u32 length, u32 crc, u64 index; then the payload (sealed: nonce, ciphertext, tag)
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

/** A sealed record or snapshot whose tag does not verify: the wrong data key, or bytes changed on purpose. */
export class WalDecryptionError extends Error {
  constructor(
    readonly file: string,
    readonly offset: number,
  ) {
    super(`cannot decrypt ${file} at offset ${offset}: wrong data key or tampered record`);
    this.name = 'WalDecryptionError';
  }
}

const segmentName = (firstIndex: number): string => `${String(firstIndex).padStart(16, '0')}.wal`;
const snapshotName = (index: number): string => `${String(index).padStart(16, '0')}.snap`;

/** The first index a segment's name carries; sealed records bind it, so it must parse. */
function segmentFirstIndex(path: string, name: string): number {
  const firstIndex = /^\d{16}\.wal$/.test(name) ? Number(name.slice(0, 16)) : Number.NaN;
  if (!Number.isSafeInteger(firstIndex)) throw new WalCorruptionError(path, 0, 'the file name is not <16 digits>.wal');
  return firstIndex;
}

/**
 * Frames one record for writev without copying its payload: [header, payload] or, sealed,
 * [header with nonce, ciphertext, tag]. The CRC covers index and everything after it.
 */
function frameRecord(record: WalRecord, cipher: PayloadCipher | undefined, place: RecordPlace): Uint8Array[] {
  // Recovery reads a longer record as corruption, so it must never be written.
  const limit = MAX_RECORD_BYTES - (cipher === undefined ? 0 : SEAL_OVERHEAD_BYTES);
  if (record.payload.length > limit) throw new Error(`cannot append record ${record.index}: ${record.payload.length} bytes is over the limit of ${limit}`);
  if (cipher === undefined) {
    const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
    header.writeUInt32LE(record.payload.length, 0);
    header.writeBigUInt64LE(BigInt(record.index), 8);
    header.writeUInt32LE(crc32(record.payload, crc32(header.subarray(8))), 4);
    return [header, record.payload];
  }
  const header = Buffer.allocUnsafe(RECORD_HEADER_BYTES + NONCE_BYTES);
  header.writeBigUInt64LE(BigInt(record.index), 8);
  const { ciphertext, tag } = cipher.seal(header.subarray(RECORD_HEADER_BYTES), walRecordAad(place), record.payload);
  header.writeUInt32LE(NONCE_BYTES + ciphertext.length + tag.length, 0);
  header.writeUInt32LE(crc32(tag, crc32(ciphertext, crc32(header.subarray(8)))), 4);
  return [header, ciphertext, tag];
}

interface SegmentToDecode {
  file: string;
  name: string;
  data: Buffer;
  isLast: boolean;
}

/** Parses one segment; returns its records and, for a torn tail, the offset to truncate to. */
function decodeSegment(segment: SegmentToDecode, strictOrder: boolean, cipher: PayloadCipher | undefined): { records: WalRecord[]; truncateAt?: number } {
  const { file, data, isLast } = segment;
  const firstIndex = cipher === undefined ? 0 : segmentFirstIndex(file, segment.name);
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
    let payload: Buffer | undefined = data.subarray(offset + RECORD_HEADER_BYTES, end);
    if (cipher !== undefined) {
      // The CRC held, so these are the bytes that were written: a failing tag is never a torn write.
      payload = cipher.open(payload, walRecordAad({ segmentFirstIndex: firstIndex, offset, index }));
      if (payload === undefined) throw new WalDecryptionError(file, offset);
    }
    records.push({ index, payload });
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
  /** The FORMAT line of this directory without a data key. */
  format: string;
  /** The FORMAT line with a data key; `<format> encrypted` unless given. */
  encryptedFormat?: string;
  /** 32 bytes; every payload on disk is sealed with it (AES-256-GCM). */
  dataKey?: Buffer;
}

interface OpenSegment {
  handle: FileHandle;
  path: string;
  firstIndex: number;
  /** Where the next record starts; undefined after a failed write until the file is measured again. */
  bytes: number | undefined;
}

/**
 * A directory of WAL segments and snapshot files. Records are framed with a length and a CRC;
 * snapshots carry a checksum. Not safe for two processes at once, nor for overlapping calls
 * from one: callers await each append and snapshot before the next (asserted).
 */
export class LocalWal {
  private segment: OpenSegment | undefined;
  private writing = false;
  private readonly cipher: PayloadCipher | undefined;

  constructor(
    private readonly dir: string,
    private readonly options: WalOptions = { strictOrder: true, format: STORE_FORMAT, encryptedFormat: STORE_FORMAT_ENCRYPTED },
  ) {
    this.cipher = options.dataKey === undefined ? undefined : new PayloadCipher(options.dataKey);
  }

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
      const segment = { file: path, name, data: await readFile(path), isLast: position === segments.length - 1 };
      const decoded = decodeSegment(segment, this.options.strictOrder, this.cipher);
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
      await this.openSegment(segments.at(-1) ?? segmentName(1));
      return { snapshot, records };
    }
    const afterSnapshot = records.filter((r) => r.index > (snapshot?.index ?? 0));
    const first = afterSnapshot[0];
    if (snapshot !== undefined && first !== undefined && first.index !== snapshot.index + 1) {
      throw new WalCorruptionError(join(this.dir, 'wal'), 0, `entries resume at ${first.index} after snapshot ${snapshot.index}`);
    }
    const lastIndex = afterSnapshot.at(-1)?.index ?? snapshot?.index ?? 0;
    await this.openSegment(segments.at(-1) ?? segmentName(lastIndex + 1));
    return { snapshot, records: afterSnapshot };
  }

  /** Opens a segment for appending; sealed records bind their offset, so its size is measured. */
  private async openSegment(name: string): Promise<void> {
    const path = join(this.dir, 'wal', name);
    const handle = await open(path, 'a');
    const firstIndex = this.cipher === undefined ? 0 : segmentFirstIndex(path, name);
    this.segment = { handle, path, firstIndex, bytes: (await handle.stat()).size };
  }

  /**
   * Appends records and, unless `sync` is false, makes them durable with one fdatasync (which
   * also covers earlier unsynced appends). Callers batch for group commit. Payloads are written
   * without a copy: the caller must not change them until the promise settles.
   */
  async append(records: WalRecord[], options: { sync: boolean } = { sync: true }): Promise<void> {
    this.beginWrite();
    try {
      await this.appendNow(records, options.sync);
    } finally {
      this.writing = false;
    }
  }

  private async appendNow(records: WalRecord[], sync: boolean): Promise<void> {
    const segment = this.segment;
    if (segment === undefined) throw new Error('assertion failed: append before recover');
    const start = segment.bytes ?? (await segment.handle.stat()).size;
    let end = start;
    const buffers: Uint8Array[] = [];
    for (const record of records) {
      for (const buffer of frameRecord(record, this.cipher, { segmentFirstIndex: segment.firstIndex, offset: end, index: record.index })) {
        buffers.push(buffer);
        end += buffer.length;
      }
    }
    segment.bytes = undefined;
    // The write itself goes to the page cache and returns in microseconds, so it is made on the
    // event loop; only the fdatasync, which waits for the disk, goes to the thread pool. A
    // round trip through the pool costs a loop turn or more, and a Ready that need not sync
    // (a commit-only hard state) then takes none. An error part way shows as a short count.
    const bytesWritten = writevSync(segment.handle.fd, buffers);
    if (bytesWritten !== end - start) throw new Error(`cannot append to ${segment.path}: wrote ${bytesWritten} of ${end - start} bytes`);
    segment.bytes = end;
    if (sync) await segment.handle.datasync();
  }

  private beginWrite(): void {
    if (this.writing) throw new Error(`assertion failed: overlapping writes to the WAL in ${this.dir}`);
    this.writing = true;
  }

  /**
   * Writes a snapshot at `index`, starts a new segment after it holding `carryOver` (records
   * still needed after the snapshot, e.g. Raft entries past it and the hard state), and deletes
   * what the snapshot makes redundant. Ordering: the snapshot and the carried records are
   * durable (files and directories) before anything is deleted.
   */
  async writeSnapshot(index: number, payload: Uint8Array, carryOver: WalRecord[] = []): Promise<void> {
    this.beginWrite();
    try {
      await this.writeSnapshotFile(index, payload);
      await this.segment?.handle.close();
      this.segment = undefined;
      await this.openSegment(segmentName(index + 1));
      if (carryOver.length > 0) await this.appendNow(carryOver, true);
    } finally {
      this.writing = false;
    }
    const walDir = join(this.dir, 'wal');
    fsyncDirectory(walDir);
    for (const name of (await readdir(walDir)).filter((f) => f.endsWith('.wal') && f !== segmentName(index + 1))) {
      await rm(join(walDir, name));
    }
    const snapDir = join(this.dir, 'snap');
    const snapshots = (await readdir(snapDir)).filter((f) => f.endsWith('.snap')).sort();
    for (const name of snapshots.slice(0, Math.max(0, snapshots.length - SNAPSHOTS_KEPT))) await rm(join(snapDir, name));
  }

  /** Writes and renames one snapshot file; durable (file and directory) when it resolves. */
  private async writeSnapshotFile(index: number, payload: Uint8Array): Promise<void> {
    // Sealed, the nonce rides at the end of the header buffer and counts as payload on disk.
    const header = Buffer.alloc(SNAPSHOT_HEADER_BYTES + (this.cipher === undefined ? 0 : NONCE_BYTES));
    let parts: Uint8Array[] = [payload];
    if (this.cipher !== undefined) {
      const { ciphertext, tag } = this.cipher.seal(header.subarray(SNAPSHOT_HEADER_BYTES), snapshotAad(index), payload);
      parts = [ciphertext, tag];
    }
    let crc = crc32(header.subarray(SNAPSHOT_HEADER_BYTES));
    let length = header.length - SNAPSHOT_HEADER_BYTES;
    for (const part of parts) {
      crc = crc32(part, crc);
      length += part.length;
    }
    header.writeUInt32LE(SNAPSHOT_MAGIC, 0);
    header.writeBigUInt64LE(BigInt(index), 4);
    header.writeUInt32LE(crc, 12);
    header.writeUInt32LE(length, 16);
    const snapDir = join(this.dir, 'snap');
    const temporary = join(snapDir, `${snapshotName(index)}.tmp`);
    const handle = await open(temporary, 'w');
    try {
      const { bytesWritten } = await handle.writev([header, ...parts]);
      if (bytesWritten !== SNAPSHOT_HEADER_BYTES + length) throw new Error(`cannot write ${temporary}: wrote ${bytesWritten} of ${SNAPSHOT_HEADER_BYTES + length} bytes`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, join(snapDir, snapshotName(index)));
    fsyncDirectory(snapDir);
  }

  async close(): Promise<void> {
    await this.segment?.handle.close();
    this.segment = undefined;
  }

  private async checkFormat(): Promise<void> {
    const path = join(this.dir, 'FORMAT');
    const plaintext = this.options.format;
    const encrypted = this.options.encryptedFormat ?? `${plaintext} encrypted`;
    const expected = this.cipher === undefined ? plaintext : encrypted;
    const found = await readFile(path, 'utf8').catch(() => undefined);
    if (found === undefined) {
      await writeFile(path, `${expected}\n`);
      fsyncDirectory(this.dir);
      return;
    }
    const format = found.trim();
    if (format === expected) return;
    if (format === encrypted) throw new Error(`cannot open ${this.dir}: it is encrypted at rest (format "${format}") and no data key was given`);
    if (format === plaintext) throw new Error(`cannot open ${this.dir}: it is not encrypted (format "${format}") but a data key was given`);
    throw new Error(`cannot open ${this.dir}: format "${format}" is not "${expected}"`);
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
      const index = Number(data.readBigUInt64LE(4));
      const payload = data.subarray(SNAPSHOT_HEADER_BYTES);
      if (this.cipher === undefined) return { index, payload };
      // Intact bytes that do not open mean the wrong key, not damage: falling back to an older
      // snapshot would only fail the same way, or worse, succeed on a tampered history.
      const opened = this.cipher.open(payload, snapshotAad(index));
      if (opened === undefined) throw new WalDecryptionError(path, SNAPSHOT_HEADER_BYTES);
      return { index, payload: opened };
    }
    return undefined;
  }
}
