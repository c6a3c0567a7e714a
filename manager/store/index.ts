export type { CommitSink, StoreBackend } from './backend.js';
export { StoreError, type StoreErrorCode } from './errors.js';
export { LocalBackend, SNAPSHOT_INTERVAL_ENTRIES } from './local-backend.js';
export { LocalWal, WalCorruptionError, STORE_FORMAT } from '../raft/storage/wal.js';
export * from './objects.js';
export { Store, WriteTransaction, newObjectId, type StoreReader, type CommitListener } from './store.js';
export type { StoreCommit, StoreEvent, StoreEventAction } from './tables.js';
