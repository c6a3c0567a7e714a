/**
 * Validation of secret and config specs at the API edge: names like Docker's, labels, and the
 * size limits of their data. Every error names the field and the limit. Secrets and configs are
 * immutable once created, so these checks run once, at create.
 */
import type { ConfigSpec, SecretSpec } from '../../proto/skiff/v1/specs.js';
import { dataNameProblem } from '../../common/object-names.js';
import { invalid } from './errors.js';

// Re-exported: validate-references.ts takes the name rule from here.
export { dataNameProblem };

/** The two kinds of named data a service can mount. */
export type DataKind = 'secret' | 'config';

/** Largest secret, in bytes (Docker's limit: 500 KiB). */
export const MAX_SECRET_BYTES = 500 * 1024;
/** Largest config, in bytes (Docker's limit: 1000 KiB). */
export const MAX_CONFIG_BYTES = 1000 * 1024;
export const MAX_DATA_LABELS = 256;
export const MAX_LABEL_KEY_LENGTH = 128;
export const MAX_LABEL_VALUE_LENGTH = 4096;

/** The size limit of `kind`'s data, in bytes. */
export function maxDataBytes(kind: DataKind): number {
  return kind === 'secret' ? MAX_SECRET_BYTES : MAX_CONFIG_BYTES;
}

/** "500 KiB (512000 bytes)": how limits read in errors. */
export function describeLimit(bytes: number): string {
  return bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB (${bytes} bytes)` : `${bytes / 1024} KiB (${bytes} bytes)`;
}

/** Refuses labels a secret or config cannot carry; `action` starts the message ("cannot create secret "db""). */
export function validateDataLabels(action: string, labels: Record<string, string>): void {
  const entries = Object.entries(labels);
  if (entries.length > MAX_DATA_LABELS) throw invalid(`${action}: it has ${entries.length} labels, more than ${MAX_DATA_LABELS}`);
  for (const [key, value] of entries) {
    if (key === '') throw invalid(`${action}: a label key must not be empty`);
    if (key.length > MAX_LABEL_KEY_LENGTH) throw invalid(`${action}: label key "${key.slice(0, 32)}…" is longer than ${MAX_LABEL_KEY_LENGTH} characters`);
    if (value.length > MAX_LABEL_VALUE_LENGTH) throw invalid(`${action}: the value of label "${key}" is longer than ${MAX_LABEL_VALUE_LENGTH} characters`);
  }
}

/**
 * Throws ApiError('invalid_argument') naming the first bad field of a secret or config spec:
 * name, labels, or data (1 byte up to the kind's limit).
 */
export function validateDataSpec(kind: DataKind, spec: SecretSpec | ConfigSpec | undefined): asserts spec is SecretSpec & ConfigSpec {
  if (spec === undefined) throw invalid(`cannot create ${kind}: spec is missing`);
  const nameProblem = dataNameProblem(spec.name);
  if (nameProblem !== undefined) throw invalid(`cannot create ${kind}: name "${spec.name}" ${nameProblem}`);
  const action = `cannot create ${kind} "${spec.name}"`;
  validateDataLabels(action, spec.labels);
  const limit = maxDataBytes(kind);
  if (spec.data.length === 0) throw invalid(`${action}: data must not be empty`);
  if (spec.data.length > limit) {
    throw invalid(`${action}: data is ${spec.data.length} bytes, more than the ${kind} size limit of ${describeLimit(limit)}`);
  }
}
