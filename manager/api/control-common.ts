/**
 * What every Control API handler shares: its options, the authorising wrapper, and how a
 * reference (id, name, unique id prefix) finds a service or a node.
 */
import * as grpc from '@grpc/grpc-js';
import type { ManagerStatus, Node, Service } from '../../proto/skiff/v1/objects.js';
import type { CommitListener, StoreReader } from '../store/store.js';
import type { ObjectsByKind } from '../store/objects.js';
import { READ_CONSISTENCY_HEADER, READ_LINEARIZABLE, READ_STALE } from '../../common/read-consistency.js';
import { ApiError } from './errors.js';
import { toGrpcError } from './status-mapping.js';
import type { NodeRequestBroker } from '../dispatcher/node-requests.js';
import type { LeaderControl } from './leader-proxy.js';

export interface ControlOptions {
  clusterId: string;
  /** Manager status per manager node id (leader, reachability), as this manager knows it. */
  managerStatuses: () => Promise<Map<string, ManagerStatus>>;
  /** True for the server on the local unix socket, whose file mode is the access control. */
  local: boolean;
  /** The Raft group, for role changes and removals that must keep a quorum. */
  membership?: Membership;
  clock?: () => number;
  /**
   * Pins a service's image tag to the digest its registry has now (`name:tag@sha256:...`), or
   * returns it unchanged when the registry cannot say (after a warning). Absent: no pinning.
   */
  resolveImage?: (image: string) => Promise<string>;
  /** Logs, exec and images: how this manager reaches the nodes (or the leader that does). */
  nodeRequests?: NodeRequestOptions;
}

/** How logs, exec and image calls reach the nodes (see node-request-handlers.ts). */
export interface NodeRequestOptions {
  /** The broker while this manager leads (its dispatcher runs), else undefined. */
  broker: () => NodeRequestBroker | undefined;
  /** A Control client to the current leader, for calls that land on a follower; undefined when none is known. */
  leader: () => LeaderControl | undefined;
  /** The store's commits (Store.subscribe), for `service logs -f` to follow tasks that start later. */
  subscribe?: (listener: CommitListener) => () => void;
}

/** What the control API may ask of the Raft group. */
export interface Membership {
  readonly leading: boolean;
  /** This manager's node id. */
  readonly selfId: string;
  isMember(nodeId: string): boolean;
  /** Why removing this voter would lose quorum, or undefined. */
  removalBlocker(nodeId: string): string | undefined;
  removeMember(nodeId: string): Promise<void>;
  /** Moves leadership to another voter; resolves with its id once this manager no longer leads. */
  transferLeadershipAway(): Promise<string>;
  /** Voters and how many of them are reachable, as the leader sees it. */
  voters(): { total: number; reachable: number };
}

type UnaryCall<Request> = grpc.ServerUnaryCall<Request, unknown>;

/**
 * Wraps a handler: domain errors mapped to statuses in one place. Who may call is decided
 * before any handler runs: by the role table (manager/security/authorization.ts) on the gRPC
 * port, and by the socket's file mode on the local socket.
 */
export function unary<Request, Response>(
  _options: ControlOptions,
  handler: (request: Request) => Promise<Response> | Response,
): grpc.handleUnaryCall<Request, Response> {
  return (call: UnaryCall<Request>, callback: grpc.sendUnaryData<Response>) => {
    Promise.resolve()
      .then(() => handler(call.request))
      .then(
        (response) => callback(null, response),
        (error: unknown) => callback(toGrpcError(error)),
      );
  };
}

/**
 * A read: served once this manager holds every write committed before the call (a ReadIndex
 * round through the leader, Store.readBarrier), so a manager cut off from the others refuses
 * instead of answering from a stale store, and a read after an acknowledged write sees it on
 * any manager. Writes need no barrier: they are checked against the version they read when
 * they commit.
 */
export function unaryRead<Request, Response>(
  store: { readBarrier(): Promise<void> },
  options: ControlOptions,
  handler: (request: Request) => Promise<Response> | Response,
): grpc.handleUnaryCall<Request, Response> {
  const linearizable = unary(options, async (request: Request) => {
    await store.readBarrier();
    return handler(request);
  });
  const stale = unary(options, handler);
  return (call: UnaryCall<Request>, callback: grpc.sendUnaryData<Response>) => {
    const values = call.metadata.get(READ_CONSISTENCY_HEADER);
    const wanted = values.length === 0 ? READ_LINEARIZABLE : String(values[0]);
    if (wanted === READ_STALE) return stale(call, callback);
    if (wanted === READ_LINEARIZABLE) return linearizable(call, callback);
    callback(toGrpcError(new ApiError('invalid_argument', `cannot read: metadata ${READ_CONSISTENCY_HEADER} is "${wanted}"; expected ${READ_LINEARIZABLE} or ${READ_STALE}`)));
  };
}


/** Kinds with unique names, which the API finds by name as well as by id. */
type NamedKind = 'service' | 'network' | 'secret' | 'config';

/** Finds a named object by exact id, exact name, or unique id prefix. */
export function resolveNamed<K extends NamedKind>(reader: StoreReader, kind: K, reference: string): ObjectsByKind[K] {
  if (reference === '') throw new ApiError('invalid_argument', `cannot find ${kind}: no ${kind} name or id given`);
  const found = reader.get(kind, reference) ?? reader.findByName(kind, reference);
  if (found !== undefined) return found;
  const matches = reader.list(kind).filter((object) => object.meta?.id.startsWith(reference));
  if (matches.length === 1 && matches[0] !== undefined) return matches[0];
  if (matches.length > 1) throw new ApiError('invalid_argument', `cannot find ${kind} "${reference}": the id prefix is ambiguous`);
  throw new ApiError('not_found', `cannot find ${kind} "${reference}": no such ${kind}`);
}

export function resolveService(reader: StoreReader, reference: string): Service {
  return resolveNamed(reader, 'service', reference);
}

export function resolveNode(reader: StoreReader, reference: string): Node {
  const nodes = reader.list('node');
  const found = reader.get('node', reference) ?? nodes.find((node) => node.description?.hostname === reference);
  if (found !== undefined) return found;
  const matches = nodes.filter((node) => node.meta?.id.startsWith(reference));
  if (reference !== '' && matches.length === 1 && matches[0] !== undefined) return matches[0];
  throw new ApiError('not_found', `cannot find node "${reference}": no such node`);
}

