/** The one place where domain errors become gRPC statuses. */
import * as grpc from '@grpc/grpc-js';
import { StoreError } from '../store/errors.js';
import { ApiError } from './errors.js';

export function toGrpcError(error: unknown): grpc.ServiceError {
  const status = grpcStatusOf(error);
  const message = error instanceof Error ? error.message : String(error);
  return Object.assign(new Error(message), { code: status, details: message, metadata: new grpc.Metadata() });
}

function grpcStatusOf(error: unknown): grpc.status {
  if (error instanceof ApiError) {
    switch (error.code) {
      case 'invalid_argument':
        return grpc.status.INVALID_ARGUMENT;
      case 'not_found':
        return grpc.status.NOT_FOUND;
      case 'already_exists':
        return grpc.status.ALREADY_EXISTS;
      case 'failed_precondition':
        return grpc.status.FAILED_PRECONDITION;
      case 'permission_denied':
        return grpc.status.PERMISSION_DENIED;
      case 'unavailable':
        return grpc.status.UNAVAILABLE;
      default: {
        const exhaustive: never = error.code;
        return exhaustive;
      }
    }
  }
  if (error instanceof StoreError) {
    switch (error.code) {
      case 'not_found':
        return grpc.status.NOT_FOUND;
      case 'already_exists':
      case 'name_conflict':
        return grpc.status.ALREADY_EXISTS;
      case 'version_conflict':
        return grpc.status.ABORTED;
      case 'unavailable':
        return grpc.status.UNAVAILABLE;
      case 'too_large':
        return grpc.status.RESOURCE_EXHAUSTED;
      default: {
        const exhaustive: never = error.code;
        return exhaustive;
      }
    }
  }
  return grpc.status.INTERNAL;
}
