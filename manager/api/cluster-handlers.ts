/**
 * Control API handlers for the cluster as a whole: its spec, join tokens, unlock key, CA
 * rotation, and node role/availability changes and removal.
 */
import * as grpc from '@grpc/grpc-js';
import type { ControlServer } from '../../proto/skiff/v1/control.js';
import type { Store } from '../store/store.js';
import type { ControlOptions } from './control-common.js';

type ClusterHandlers = Pick<ControlServer, 'updateCluster' | 'getUnlockKey' | 'updateNode' | 'removeNode' | 'rotateRootCa' | 'unlock'>;

const unimplemented = (callback: grpc.sendUnaryData<never>): void =>
  callback({ code: grpc.status.UNIMPLEMENTED, details: 'not implemented yet', metadata: new grpc.Metadata(), name: 'Error', message: 'not implemented yet' });

export function clusterHandlers(_store: Store, _options: ControlOptions): ClusterHandlers {
  return {
    updateCluster: (_call, callback) => unimplemented(callback),
    getUnlockKey: (_call, callback) => unimplemented(callback),
    updateNode: (_call, callback) => unimplemented(callback),
    removeNode: (_call, callback) => unimplemented(callback),
    rotateRootCa: (_call, callback) => unimplemented(callback),
    unlock: (_call, callback) => unimplemented(callback),
  };
}
