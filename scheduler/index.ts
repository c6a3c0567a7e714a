export { DEFAULT_FILTERS, explainRejections, feasibleNodes, type Filter } from './filters.js';
export type { NodeAvailabilityName, NodeInfo, ScheduleResult, TaskToPlace } from './model.js';
export { schedule } from './scheduler.js';
