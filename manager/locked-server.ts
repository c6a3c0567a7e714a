/**
 * A manager that autolock keeps locked: its data key and node key are wrapped with the unlock
 * key, which is not on disk. Until `skiff unlock` gives it the key, it serves only its local
 * control socket, where Unlock works and every other call says why nothing else does.
 */
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { checkUnixSocketPath } from '../common/address.js';
import type { Logger } from '../common/log.js';
import { ControlService, type ControlServer } from '../proto/skiff/v1/control.js';
import { ApiError } from './api/errors.js';
import { toGrpcError } from './api/status-mapping.js';

export const LOCKED_MESSAGE = 'cannot serve: this manager is locked (autolock is on and it restarted); run `skiff unlock` on this host and give it the unlock key';

/**
 * Serves the locked control socket until `tryUnlock` accepts a key; resolves with that key once
 * the socket is closed again (the caller then starts the manager on it).
 */
export async function waitForUnlock(controlSocket: string, tryUnlock: (unlockKey: string) => Promise<void>, log: Logger): Promise<string> {
  checkUnixSocketPath(controlSocket, 'the control API');
  const server = new grpc.Server();
  let unlocked: (key: string) => void = () => undefined;
  const result = new Promise<string>((resolve) => (unlocked = resolve));
  const refuse = (_call: unknown, callback: grpc.sendUnaryData<never>): void => callback(toGrpcError(new ApiError('failed_precondition', LOCKED_MESSAGE)));
  const handlers = Object.fromEntries(Object.keys(ControlService).map((method) => [method, refuse])) as unknown as ControlServer;
  handlers.unlock = (call, callback) => {
    tryUnlock(call.request.unlockKey).then(
      () => {
        callback(null, {});
        unlocked(call.request.unlockKey);
      },
      (error: unknown) => callback(toGrpcError(new ApiError('permission_denied', `cannot unlock: ${error instanceof Error ? error.message : String(error)}`))),
    );
  };
  server.addService(ControlService, handlers);
  await mkdir(dirname(controlSocket), { recursive: true });
  await rm(controlSocket, { force: true });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${controlSocket}`, grpc.ServerCredentials.createInsecure(), (error) => (error === null ? resolve() : reject(error))),
  );
  await chmod(controlSocket, 0o600);
  log.warn(LOCKED_MESSAGE, { controlSocket });
  const key = await result;
  // Let the reply go out before the socket closes.
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  await rm(controlSocket, { force: true });
  return key;
}
