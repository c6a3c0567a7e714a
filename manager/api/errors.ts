/**
 * Expected failures of API calls. Messages read "cannot <action>: <reason>" and name the field
 * or object; `code` is what the status mapping switches on.
 */
export type ApiErrorCode = 'invalid_argument' | 'not_found' | 'already_exists' | 'failed_precondition' | 'permission_denied' | 'unavailable';

export class ApiError extends Error {
  constructor(
    readonly code: ApiErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const invalid = (message: string): ApiError => new ApiError('invalid_argument', message);
