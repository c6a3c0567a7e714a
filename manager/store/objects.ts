/**
 * The object kinds the store holds and the typed view over them. Every stored object has a
 * `meta` whose `version` is the store index of its last write.
 */
import type { Cluster, Config, Network, Node, Secret, Service, Task } from '../../proto/skiff/v1/objects.js';
import type { Meta } from '../../proto/skiff/v1/types.js';
import type { StoreObject } from '../../proto/skiff/v1/store.js';

export interface ObjectsByKind {
  node: Node;
  service: Service;
  task: Task;
  cluster: Cluster;
  network: Network;
  secret: Secret;
  config: Config;
}

export type ObjectKind = keyof ObjectsByKind;
export type AnyObject = ObjectsByKind[ObjectKind];

export const OBJECT_KINDS: readonly ObjectKind[] = ['cluster', 'node', 'service', 'task', 'network', 'secret', 'config'];

/** A kind together with one of its objects; the discriminated form used in transactions and events. */
export type KindedObject = { [K in ObjectKind]: { kind: K; object: ObjectsByKind[K] } }[ObjectKind];

/** The object's meta; every stored object has one (asserted, since proto makes it optional). */
export function metaOf(object: AnyObject): Meta {
  if (object.meta === undefined) throw new Error('assertion failed: stored object without meta');
  return object.meta;
}

export function toStoreObject(kinded: KindedObject): StoreObject {
  switch (kinded.kind) {
    case 'node':
      return { object: { $case: 'node', value: kinded.object } };
    case 'service':
      return { object: { $case: 'service', value: kinded.object } };
    case 'task':
      return { object: { $case: 'task', value: kinded.object } };
    case 'cluster':
      return { object: { $case: 'cluster', value: kinded.object } };
    case 'network':
      return { object: { $case: 'network', value: kinded.object } };
    case 'secret':
      return { object: { $case: 'secret', value: kinded.object } };
    case 'config':
      return { object: { $case: 'config', value: kinded.object } };
    default: {
      const exhaustive: never = kinded;
      throw new Error(`assertion failed: unknown kind ${String(exhaustive)}`);
    }
  }
}

export function fromStoreObject(stored: StoreObject): KindedObject {
  const inner = stored.object;
  if (inner === undefined) throw new Error('cannot decode store object: no object set');
  switch (inner.$case) {
    case 'node':
      return { kind: 'node', object: inner.value };
    case 'service':
      return { kind: 'service', object: inner.value };
    case 'task':
      return { kind: 'task', object: inner.value };
    case 'cluster':
      return { kind: 'cluster', object: inner.value };
    case 'network':
      return { kind: 'network', object: inner.value };
    case 'secret':
      return { kind: 'secret', object: inner.value };
    case 'config':
      return { kind: 'config', object: inner.value };
    default: {
      const exhaustive: never = inner;
      throw new Error(`assertion failed: unknown store object ${String(exhaustive)}`);
    }
  }
}
