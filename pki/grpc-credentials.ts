// grpc-js credentials for Skiff's mutual TLS: every connection presents a certificate from the
// cluster CA, in both directions. There is no plaintext mode.
import * as grpc from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { MANAGER_TLS_NAME, certificateIdentity, type CertificateIdentity } from './certificate-identity.js';
import type { NodeCredentials } from './credentials-store.js';
import { LiveCredentials } from './live-credentials.js';

/**
 * Server credentials: present this node's certificate; REQUIRE a client certificate that chains to
 * the cluster CA (a connection without one, or with one from another CA, fails the handshake).
 */
export function serverCredentials(creds: NodeCredentials): grpc.ServerCredentials {
  if (creds instanceof LiveCredentials) return grpc.experimental.createCertificateProviderServerCredentials(creds, creds, true);
  return grpc.ServerCredentials.createSsl(
    Buffer.from(creds.caCertPem),
    [{ private_key: Buffer.from(creds.keyPem), cert_chain: Buffer.from(creds.certPem) }],
    true,
  );
}

/**
 * Server credentials for the join port: this manager's certificate followed by the CA chain, so
 * a joining node can pin the CA by its digest; no client certificate (the token is the credential).
 */
export function joinServerCredentials(creds: NodeCredentials): grpc.ServerCredentials {
  // grpc-js's factory hands its first argument to the credentials as the identity provider
  // (its parameter names say otherwise); no CA provider means no client certificate is asked for.
  if (creds instanceof LiveCredentials) return grpc.experimental.createCertificateProviderServerCredentials(creds.chainProvider(), null, false);
  return grpc.ServerCredentials.createSsl(null, [{ private_key: Buffer.from(creds.keyPem), cert_chain: Buffer.from(`${creds.certPem.trimEnd()}\n${creds.caCertPem}`) }], false);
}

/**
 * Channel credentials for a client (agent, CLI, peer manager): trust only the cluster CA and
 * present this node's certificate. Use with `channelOptions()`, since managers are dialled by IP.
 */
export function channelCredentials(creds: NodeCredentials): grpc.ChannelCredentials {
  if (creds instanceof LiveCredentials) return grpc.experimental.createCertificateProviderChannelCredentials(creds, creds);
  return grpc.credentials.createSsl(
    Buffer.from(creds.caCertPem),
    Buffer.from(creds.keyPem),
    Buffer.from(creds.certPem),
  );
}

/**
 * Channel options every client of a manager must pass: the server's certificate is checked against
 * the name MANAGER_TLS_NAME, which every manager certificate carries, whatever address was dialled.
 */
export function channelOptions(): grpc.ChannelOptions {
  return { 'grpc.ssl_target_name_override': MANAGER_TLS_NAME };
}

/**
 * The peer of a server call, as far as identity is concerned. Every grpc-js server call (unary,
 * streaming, intercepting) fits; grpc-js does not export its AuthContext type, hence this shape.
 */
export interface CallWithAuthContext {
  getAuthContext(): { sslPeerCertificate?: PeerCertificate } | null;
}

/**
 * The verified identity of the client of a server call (CN = node id, OU = role, O = cluster id).
 * Undefined when the transport is not TLS, the client presented no certificate that TLS verified,
 * or the certificate does not carry a Skiff identity. Callers must also compare `clusterId`.
 */
export function peerIdentity(call: CallWithAuthContext): CertificateIdentity | undefined {
  const session = http2SessionOf(call);
  const known = session === undefined ? undefined : identityBySession.get(session);
  if (known !== undefined) return known;
  const identity = identityOfCertificate(call);
  if (identity !== undefined && session !== undefined) identityBySession.set(session, identity);
  return identity;
}

/**
 * Identities by HTTP/2 session, i.e. by TLS connection. Node's Http2Session disables TLS
 * renegotiation on its socket, so the peer certificate cannot change while the session lives;
 * remembering the identity per session saves grpc-js's getAuthContext, which builds the peer
 * certificate object (TLSSocket.getPeerCertificate) anew on every call: 2-3% of a busy leader.
 */
const identityBySession = new WeakMap<object, CertificateIdentity>();

/**
 * The HTTP/2 session a grpc-js server call runs on. grpc-js keeps it in fields it does not type
 * publicly (handler call -> `call`, intercepting call -> `nextCall`, base call -> `stream`), so
 * this looks for them and answers undefined when they are not there (another grpc-js version):
 * the caller then reads the certificate as before.
 */
function http2SessionOf(call: unknown): object | undefined {
  let current = call;
  for (let depth = 0; depth < MAX_CALL_WRAPPERS && typeof current === 'object' && current !== null; depth += 1) {
    const fields = current as { stream?: { session?: unknown }; nextCall?: unknown; call?: unknown };
    const session = fields.stream?.session;
    if (typeof session === 'object' && session !== null) return session;
    current = fields.nextCall ?? fields.call;
  }
  return undefined;
}

/** Interceptors and wrappers between a handler's call and grpc-js's base call, at most. */
const MAX_CALL_WRAPPERS = 8;

function identityOfCertificate(call: CallWithAuthContext): CertificateIdentity | undefined {
  const certificate = call.getAuthContext()?.sslPeerCertificate;
  if (certificate?.raw === undefined) return undefined;
  // Parsing the certificate on every call was the largest CPU cost of a busy leader. The
  // fingerprint (SHA-256 of the DER, computed by TLS already) names the exact certificate.
  const key = certificate.fingerprint256;
  const cached = key === undefined ? undefined : identityCache.get(key);
  if (cached !== undefined) return cached;
  const identity = certificateIdentity(new Uint8Array(certificate.raw));
  if (identity !== undefined && key !== undefined) {
    if (identityCache.size >= MAX_CACHED_IDENTITIES) identityCache.delete(identityCache.keys().next().value as string);
    identityCache.set(key, identity);
  }
  return identity;
}

/** Identities of recently seen peer certificates, oldest first; bounded. */
const identityCache = new Map<string, CertificateIdentity>();
/** Peer certificates whose identity is remembered at most (about one per node and admin). */
export const MAX_CACHED_IDENTITIES = 4096;
