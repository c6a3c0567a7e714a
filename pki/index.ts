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
  CA_KEY_FILE,
  issueNodeCredentials,
  readCertificateAuthority,
  writeCertificateAuthority,
} from './ca-store.js';
export { PkiError, type PkiErrorCode } from './errors.js';
export {
  channelCredentials,
  channelOptions,
  peerIdentity,
  serverCredentials,
  type CallWithAuthContext,
} from './grpc-credentials.js';
