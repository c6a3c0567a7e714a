/**
 * The `--update-*` and `--rollback-*` flags of `service create` and `service update` as an
 * UpdateConfig; a stack's `update_config` and `rollback_config` go through the same parser.
 */
import type { UpdateConfig } from '../../proto/skiff/v1/specs.js';
import { FlagError, parseCount, parseDuration } from './service-flags.js';

/** `--update-*` (or `--rollback-*`) flags as commander gives them. */
export interface UpdateConfigFlags {
  parallelism?: string;
  delay?: string;
  failureAction?: string;
  monitor?: string;
  maxFailureRatio?: string;
  order?: string;
}

/** Reads `--update-parallelism`, `--rollback-delay`, ... out of commander's flag object. */
export function updateConfigFlags(flags: Record<string, unknown>, prefix: 'update' | 'rollback'): UpdateConfigFlags {
  const pick = (name: string): string | undefined => {
    const value = flags[`${prefix}${name}`];
    return typeof value === 'string' ? value : undefined;
  };
  const result: UpdateConfigFlags = {};
  for (const [key, name] of [['parallelism', 'Parallelism'], ['delay', 'Delay'], ['failureAction', 'FailureAction'], ['monitor', 'Monitor'], ['maxFailureRatio', 'MaxFailureRatio'], ['order', 'Order']] as const) {
    const value = pick(name);
    if (value !== undefined) result[key] = value;
  }
  return result;
}

/**
 * The update (or rollback) config with the given flags applied over `base`; undefined when no flag
 * is given and there is no base. `flagName` names a field in errors (`--update-delay` by default;
 * a Compose file names its own keys).
 */
export function parseUpdateConfig(
  prefix: 'update' | 'rollback',
  flags: UpdateConfigFlags,
  base: UpdateConfig | undefined,
  flagName: (field: string) => string = (field) => `--${prefix}-${field}`,
): UpdateConfig | undefined {
  if (Object.values(flags).every((value) => value === undefined)) return base;
  const config: UpdateConfig = base === undefined ? { parallelism: 1, delayMs: 0, failureAction: '', monitorMs: 0, maxFailureRatio: 0, order: '' } : { ...base };
  if (flags.parallelism !== undefined) config.parallelism = parseCount(flagName('parallelism'), flags.parallelism);
  if (flags.delay !== undefined) config.delayMs = parseDuration(flagName('delay'), flags.delay);
  if (flags.monitor !== undefined) config.monitorMs = parseDuration(flagName('monitor'), flags.monitor);
  if (flags.failureAction !== undefined) {
    const allowed = prefix === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue'];
    if (!allowed.includes(flags.failureAction)) throw new FlagError(`invalid value "${flags.failureAction}" for ${flagName('failure-action')}: use ${allowed.join(', ')}`);
    config.failureAction = flags.failureAction;
  }
  if (flags.maxFailureRatio !== undefined) {
    const ratio = Number(flags.maxFailureRatio);
    if (flags.maxFailureRatio.trim() === '' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) throw new FlagError(`invalid value "${flags.maxFailureRatio}" for ${flagName('max-failure-ratio')}: must be a number from 0 to 1`);
    config.maxFailureRatio = ratio;
  }
  if (flags.order !== undefined) {
    if (flags.order !== 'stop-first' && flags.order !== 'start-first') throw new FlagError(`invalid value "${flags.order}" for ${flagName('order')}: use stop-first or start-first`);
    config.order = flags.order;
  }
  return config;
}
