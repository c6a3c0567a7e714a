/**
 * Expected failures of store writes. Each has a stable `code`; the API maps codes to gRPC
 * statuses in exactly one place (manager/api/status-mapping.ts).
 */
export type StoreErrorCode = 'not_found' | 'already_exists' | 'version_conflict' | 'name_conflict' | 'unavailable' | 'too_large';

export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'StoreError';
  }
}
