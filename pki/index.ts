// The public face of pki/: the cluster CA, node credentials on disk, and grpc-js mutual TLS.
export {
  DEFAULT_CERTIFICATE_LIFETIME_DAYS,
  ID_LENGTH,
  MANAGER_TLS_NAME,
  NODE_ROLES,
  ROOT_CA_COMMON_NAME,
  certificateIdentity,
  certificateIdentityOfCa,
  createCertificateAuthority,
  createCertificateRequest,
  crossSignCertificateAuthority,
  issueCertificateForKey,
  publicKeyOfCertificateRequest,
  MIN_CERTIFICATE_LIFETIME_MS,
  MAX_CERTIFICATE_LIFETIME_DAYS,
  isNodeRole,
  issueCertificate,
  newNodeId,
  type CertificateAuthority,
  type CertificateIdentity,
  type IssueRequest,
  type IssuedCertificate,
  type NodeRole,
} from './certificate-authority.js';
export {
  CA_CERT_FILE,
  NODE_CERT_FILE,
  NODE_KEY_FILE,
  readCredentials,
  writeCredentials,
  writeFileAtomic,
  type NodeCredentials,
} from './credentials-store.js';
export {
  BOOTSTRAP_FILE,
  CA_KEY_FILE,
  readClusterBootstrap,
  writeClusterBootstrap,
  type ClusterBootstrap,
  issueNodeCredentials,
  readCertificateAuthority,
  writeCertificateAuthority,
} from './ca-store.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  channelCredentials,
  channelOptions,
  joinServerCredentials,
  peerIdentity,
  serverCredentials,
  type CallWithAuthContext,
} from './grpc-credentials.js';
export { LiveCredentials } from './live-credentials.js';
export { CA_DIGEST_LENGTH, caDigest, digestOfDer, joinTokensEqual, newJoinToken, parseJoinToken, type JoinToken } from './join-token.js';
export { CertificateRenewer, renewalDelayMs, RENEW_AT_MAX_FRACTION, RENEW_AT_MIN_FRACTION, type RenewedCertificate } from './renewal.js';
export { isKeyEncrypted, rewrapNodeKey, type KeyPassphraseOptions } from './credentials-store.js';
