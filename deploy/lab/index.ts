// The public face of deploy/lab: a real multi-host Skiff cluster on one machine (DESIGN.md §10),
// for the CLI (`skiff lab …`) and for e2e tests.
export { labDown, leftovers } from './lab-down.js';
export { EXEC_TIMEOUT_MS, execArgv, labExec, labExecInteractive, labKill, labRestart, labStart, labStatus, type LabHostStatus, type LabStatus } from './lab-hosts.js';
export { labUp, registryTags, type LabUpOptions } from './lab-up.js';
export { PARTITION_TABLE, labHeal, labPartition } from './lab-partition.js';
export { DEFAULT_LAB_NAME, DEFAULT_REGISTRY_PORT, LAB_NAME_PATTERN, MAX_HOSTS, SKIFFD_PORT, bridgeAddress, checkLabName, hostAddress, hostLayout, labPaths } from './naming.js';
export { readLabState, type LabHost, type LabRole, type LabState } from './state.js';
export type { CommandResult } from './system.js';
