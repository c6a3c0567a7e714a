/** Stable codes of the expected PKI failures; callers switch on these, never on messages. */
export type PkiErrorCode =
  | 'invalid_request'
  | 'credentials_missing'
  | 'credentials_corrupt'
  | 'credentials_locked'
  | 'already_exists';

/**
 * An expected PKI failure: bad input, missing or corrupt credential files, a CA that would be
 * overwritten. Messages read "cannot <action>: <reason>" and name the field or file.
 */
export class PkiError extends Error {
  constructor(
    readonly code: PkiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'PkiError';
  }
}
