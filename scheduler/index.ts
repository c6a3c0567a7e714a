export {
  attributeValue,
  type Constraint,
  constraintMet,
  MAX_CONSTRAINT_LENGTH,
  type NodeAttribute,
  type Parsed,
  parseAttribute,
  parseConstraint,
  parsePreference,
} from './constraint.js';
export { DEFAULT_FILTERS, feasibleNodes, type Filter, firstRejection, type PreparedGroup, RejectionTally } from './filters.js';
export {
  hostPortKey,
  NO_RESOURCES,
  type NodeAvailabilityName,
  type NodeInfo,
  PLACEMENT_STRATEGY_LABEL,
  type PlacementStrategy,
  type ResourceAmounts,
  type ScheduleResult,
  type TaskGroup,
} from './model.js';
export { REPEATED_FAILURE_THRESHOLD } from './placement-tree.js';
export { prepareGroup, schedule } from './scheduler.js';
