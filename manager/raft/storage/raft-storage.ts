/**
 * Durable Raft state on one manager's disk: a WAL whose records are what one Ready made durable
 * (entries and hard state, one fsync), and checksummed snapshot files. Recovery resolves
 * rewritten suffixes (a later record's entries replace earlier ones from their first index on),
 * truncates a torn tail and refuses corruption in the middle, naming file and offset. With a
 * data key (manager/keys), every record and snapshot is encrypted at rest.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RaftSnapshotFile, RaftWalRecord } from '../../../proto/skiff/v1/raft.js';
import type { ConfState, Entry, HardState, LogIndex, MemberId, RaftInitialState, Snapshot, Term } from '../core/types.js';
import { entryFromWire, entryToWire, hardStateFromWire, hardStateToWire, metaFromWire, metaToWire } from './codec.js';
import { LocalWal, WalCorruptionError } from './wal.js';

/** The on-disk format of a Raft directory. */
export const RAFT_FORMAT = 'skiff-raft 1';
/** The same, with every WAL record and snapshot sealed with the manager's data key. */
export const RAFT_FORMAT_ENCRYPTED = 'skiff-raft 2 encrypted';

export interface RaftStorageOptions {
  /** The manager's 32-byte data key; without it the directory is (and must be) plaintext. */
  dataKey?: Buffer;
}

/**
 * What a Raft directory's FORMAT line says, before opening it: 'new' when there is none yet
 * (the first open writes it), so a caller can tell whether it needs the data key.
 */
export async function raftDirectoryEncryption(dir: string): Promise<'encrypted' | 'plaintext' | 'new' | 'unknown'> {
  const found = await readFile(join(dir, 'FORMAT'), 'utf8').catch((error: unknown) => {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return undefined;
    throw error;
  });
  if (found === undefined) return 'new';
  const format = found.trim();
  return format === RAFT_FORMAT_ENCRYPTED ? 'encrypted' : format === RAFT_FORMAT ? 'plaintext' : 'unknown';
}

const EMPTY_HARD_STATE: HardState = { term: 0 as Term, vote: '' as MemberId, commit: 0 as LogIndex };

/**
 * Whether a Ready must reach the disk before its messages go out: new entries, a new term or a
 * new vote must (a member must never forget what it promised). A hard state whose only change
 * is the commit index need not: after a crash the commit index is learnt again from the leader,
 * and a lower one on disk only means re-applying from the snapshot (etcd's MustSync).
 */
export function mustSync(previous: HardState, next: HardState | undefined, entries: readonly Entry[]): boolean {
  if (entries.length > 0) return true;
  return next !== undefined && (next.term !== previous.term || next.vote !== previous.vote);
}

export class RaftStorage {
  private readonly wal: LocalWal;
  private hardState: HardState = EMPTY_HARD_STATE;

  constructor(
    private readonly dir: string,
    options: RaftStorageOptions = {},
  ) {
    const dataKey = options.dataKey === undefined ? {} : { dataKey: options.dataKey };
    this.wal = new LocalWal(dir, { strictOrder: false, format: RAFT_FORMAT, encryptedFormat: RAFT_FORMAT_ENCRYPTED, ...dataKey });
  }

  /**
   * Reads back everything durable. A directory with no snapshot and no records is new: it
   * starts from `bootstrap` (the first member's own conf) or, for a joining member, empty.
   */
  async open(bootstrap: ConfState): Promise<{ initial: RaftInitialState; fresh: boolean }> {
    const recovered = await this.wal.recover();
    let snapshot: Snapshot = { meta: { index: 0 as LogIndex, term: 0 as Term, conf: bootstrap }, data: new Uint8Array() };
    if (recovered.snapshot !== undefined) {
      const file = RaftSnapshotFile.decode(recovered.snapshot.payload);
      snapshot = { meta: metaFromWire(file.meta), data: file.data };
    }
    let entries: Entry[] = [];
    for (const record of recovered.records) {
      const decoded = RaftWalRecord.decode(record.payload);
      const incoming = decoded.entries.map(entryFromWire);
      const first = incoming[0];
      if (first !== undefined) entries = [...entries.filter((entry) => entry.index < first.index), ...incoming];
      if (decoded.hardState !== undefined) this.hardState = hardStateFromWire(decoded.hardState);
    }
    entries = entries.filter((entry) => entry.index > snapshot.meta.index);
    const first = entries[0];
    if (first !== undefined && first.index !== snapshot.meta.index + 1) {
      // The newest snapshot was unreadable and an older one was used, but the log between them
      // is gone (it was compacted): starting would hand Raft a log with a hole.
      throw new WalCorruptionError(this.dir, 0, `the log resumes at index ${first.index}, but the newest readable snapshot ends at ${snapshot.meta.index}; a newer snapshot is damaged`);
    }
    const fresh = recovered.snapshot === undefined && recovered.records.length === 0;
    return { initial: { hardState: this.hardState, snapshot, entries, applied: snapshot.meta.index }, fresh };
  }

  /**
   * Makes one Ready's durable part durable, in the order the core requires: the snapshot (if
   * any), then entries and hard state together in one record and one fsync.
   */
  async save(snapshot: Snapshot | undefined, entries: Entry[], hardState: HardState | undefined): Promise<void> {
    const previous = this.hardState;
    if (hardState !== undefined) this.hardState = hardState;
    if (snapshot !== undefined) {
      await this.writeSnapshot(snapshot, entries);
      return;
    }
    if (entries.length === 0 && hardState === undefined) return;
    const record = RaftWalRecord.encode({ entries: entries.map(entryToWire), hardState: hardState === undefined ? undefined : hardStateToWire(hardState) }).finish();
    await this.wal.append([{ index: entries[0]?.index ?? 0, payload: record }], { sync: mustSync(previous, hardState, entries) });
  }

  /** Stores a snapshot the application took at `snapshot.meta.index`, keeping `tail` (entries after it). */
  async compact(snapshot: Snapshot, tail: Entry[]): Promise<void> {
    await this.writeSnapshot(snapshot, tail);
  }

  async close(): Promise<void> {
    await this.wal.close();
  }

  private async writeSnapshot(snapshot: Snapshot, tail: Entry[]): Promise<void> {
    const payload = RaftSnapshotFile.encode({ meta: metaToWire(snapshot.meta), data: snapshot.data }).finish();
    const carried = RaftWalRecord.encode({ entries: tail.map(entryToWire), hardState: hardStateToWire(this.hardState) }).finish();
    await this.wal.writeSnapshot(snapshot.meta.index, payload, [{ index: tail[0]?.index ?? 0, payload: carried }]);
  }
}
