/** For validation tests: what a call says, as "CODE: message" for an ApiError or "accepted". */
import { ApiError } from '../errors.js';

/** Runs `run`; an ApiError becomes "CODE: message", no error "accepted", anything else is thrown on. */
export function refusal(run: () => unknown): string {
  try {
    run();
  } catch (error) {
    if (error instanceof ApiError) return `${error.code}: ${error.message}`;
    throw error;
  }
  return 'accepted';
}
