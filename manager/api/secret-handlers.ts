/**
 * Control API handlers for secrets and configs. Their data is never returned by any of them.
 */
import * as grpc from '@grpc/grpc-js';
import type { ControlServer } from '../../proto/skiff/v1/control.js';
import type { Store } from '../store/store.js';
import type { ControlOptions } from './control-common.js';

type SecretHandlers = Pick<ControlServer,
  'createSecret' | 'getSecret' | 'listSecrets' | 'removeSecret' | 'createConfig' | 'getConfig' | 'listConfigs' | 'removeConfig'>;

const unimplemented = (callback: grpc.sendUnaryData<never>): void =>
  callback({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented yet', metadata: new grpc.Metadata(), name: 'Error', message: 'not implemented yet' });

export function secretHandlers(_store: Store, _options: ControlOptions): SecretHandlers {
  return {
    createSecret: (_call, callback) => unimplemented(callback),
    getSecret: (_call, callback) => unimplemented(callback),
    listSecrets: (_call, callback) => unimplemented(callback),
    removeSecret: (_call, callback) => unimplemented(callback),
    createConfig: (_call, callback) => unimplemented(callback),
    getConfig: (_call, callback) => unimplemented(callback),
    listConfigs: (_call, callback) => unimplemented(callback),
    removeConfig: (_call, callback) => unimplemented(callback),
  };
}
