/**
 * Call metadata that picks a Control API read's consistency: `linearizable` (the default: the
 * manager first confirms with the leader that it holds every committed write) or `stale`, which
 * answers from the contacted manager's own store at once: possibly behind the cluster, but
 * available without a quorum (`skiff --stale`, for looking around after a quorum loss). Writes
 * ignore it. Shared by the CLI and the managers.
 */
export const READ_CONSISTENCY_HEADER = 'skiff-read-consistency';
export const READ_LINEARIZABLE = 'linearizable';
export const READ_STALE = 'stale';
