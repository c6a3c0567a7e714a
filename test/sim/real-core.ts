/**
 * The production Raft core (manager/raft/core), as the simulator's default CoreFactory.
 */

import { createRaftCore, decodeConfChange, defaultRaftConfig } from '../../manager/raft/core/index.js';
import type { CoreFactory } from './sim-member.js';

export const realCores: CoreFactory = {
  create: createRaftCore,
  defaultConfig: defaultRaftConfig,
  decodeConfChange,
};
