/**
 * Node attributes, placement constraints and placement preferences: one grammar, parsed once,
 * shared by the scheduler and by validation at the API edge so both say the same thing.
 *
 * Attributes: node.id, node.hostname, node.role, node.platform.os, node.platform.arch,
 * node.labels.KEY. Constraints: ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE. Values compare without
 * regard to case, as in Docker swarm; a node without the label fails `==` and passes `!=`.
 */
import type { NodeInfo } from './model.js';

type FixedAttributeKind = 'id' | 'hostname' | 'role' | 'os' | 'arch';

export type NodeAttribute =
  | { kind: FixedAttributeKind; text: string }
  | { kind: 'label'; key: string; text: string };

export interface Constraint {
  attribute: NodeAttribute;
  operator: '==' | '!=';
  value: string;
  /** Canonical form, used in explain strings: "node.labels.zone==b". */
  text: string;
}

export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

// A Map, not an object literal: "constructor" or "toString" must not look like attributes.
const FIXED_ATTRIBUTES = new Map<string, FixedAttributeKind>([
  ['node.id', 'id'],
  ['node.hostname', 'hostname'],
  ['node.role', 'role'],
  ['node.platform.os', 'os'],
  ['node.platform.arch', 'arch'],
]);
const LABEL_PREFIX = 'node.labels.';
const LABEL_KEY = /^[A-Za-z0-9_][A-Za-z0-9_.\-/]*$/;
const ATTRIBUTE_LIST = 'node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.KEY';
/** Longest constraint or preference accepted, so explain strings stay short. */
export const MAX_CONSTRAINT_LENGTH = 256;

/** "node.labels.zone" -> the attribute, or an error saying what is accepted. */
export function parseAttribute(text: string): Parsed<NodeAttribute> {
  const trimmed = text.trim();
  const kind = FIXED_ATTRIBUTES.get(trimmed);
  if (kind !== undefined) return { ok: true, value: { kind, text: trimmed } };
  if (trimmed.startsWith(LABEL_PREFIX)) {
    const key = trimmed.slice(LABEL_PREFIX.length);
    if (!LABEL_KEY.test(key)) return { ok: false, error: `label key "${key}" must be letters, digits, '_', '.', '-' or '/'` };
    return { ok: true, value: { kind: 'label', key, text: trimmed } };
  }
  return { ok: false, error: `unknown attribute "${trimmed}": use ${ATTRIBUTE_LIST}` };
}

/** "node.labels.zone == b" -> a constraint, or an error for a malformed one. */
export function parseConstraint(text: string): Parsed<Constraint> {
  if (text.length > MAX_CONSTRAINT_LENGTH) return { ok: false, error: `constraint is longer than ${MAX_CONSTRAINT_LENGTH} characters` };
  const match = /^([^=!]*)(==|!=)(.*)$/.exec(text);
  if (match === null) return { ok: false, error: `constraint "${text}" must be ATTRIBUTE==VALUE or ATTRIBUTE!=VALUE` };
  const attribute = parseAttribute(match[1] ?? '');
  if (!attribute.ok) return { ok: false, error: `constraint "${text}": ${attribute.error}` };
  const value = (match[3] ?? '').trim();
  const operator = match[2] === '!=' ? '!=' : '==';
  if (value === '') return { ok: false, error: `constraint "${text}": the value is empty` };
  if (/[=!]/.test(value)) return { ok: false, error: `constraint "${text}": the value must not contain '=' or '!'` };
  if (attribute.value.kind === 'role' && !['manager', 'worker'].includes(value.toLowerCase())) {
    return { ok: false, error: `constraint "${text}": node.role is manager or worker` };
  }
  return { ok: true, value: { attribute: attribute.value, operator, value, text: `${attribute.value.text}${operator}${value}` } };
}

/** A placement preference: only spreading over an attribute exists, written as the attribute. */
export function parsePreference(text: string): Parsed<NodeAttribute> {
  if (text.length > MAX_CONSTRAINT_LENGTH) return { ok: false, error: `placement preference is longer than ${MAX_CONSTRAINT_LENGTH} characters` };
  const attribute = parseAttribute(text);
  return attribute.ok ? attribute : { ok: false, error: `placement preference "${text}": ${attribute.error}` };
}

/** The node's value of the attribute; undefined when the node has no such label. */
export function attributeValue(attribute: NodeAttribute, node: NodeInfo): string | undefined {
  switch (attribute.kind) {
    case 'id':
      return node.id;
    case 'hostname':
      return node.hostname;
    case 'role':
      return node.role;
    case 'os':
      return node.platform.os;
    case 'arch':
      return node.platform.arch;
    case 'label':
      return Object.prototype.hasOwnProperty.call(node.labels, attribute.key) ? node.labels[attribute.key] : undefined;
    default: {
      const exhaustive: never = attribute;
      throw new Error(`unknown attribute ${String(exhaustive)}`);
    }
  }
}

/** Whether the node meets the constraint. */
export function constraintMet(constraint: Constraint, node: NodeInfo): boolean {
  const actual = attributeValue(constraint.attribute, node);
  const equal = actual !== undefined && actual.toLowerCase() === constraint.value.toLowerCase();
  return constraint.operator === '==' ? equal : !equal;
}
