/**
 * A certificate renewal over the NodeCA service: the caller's current credential authenticates the
 * request, the manager signs the certificate request. Used by skiffd for its node certificate and
 * by the CLI for its admin credential.
 */
import * as grpc from '@grpc/grpc-js';
import { channelCredentials, channelOptions } from '../pki/grpc-credentials.js';
import type { NodeCredentials } from '../pki/credentials-store.js';
import type { RenewedCertificate } from '../pki/renewal.js';
import { NodeCAClient } from '../proto/skiff/v1/ca.js';

/** Deadline of one renewal call. */
export const RENEW_TIMEOUT_MS = 10_000;

/** Asks each target in turn for a renewed certificate, with the current credential; the first answer wins. */
export async function renewCertificate(targets: readonly string[], credentials: NodeCredentials, csr: Uint8Array, addr: string): Promise<RenewedCertificate> {
  let lastError: unknown;
  for (const target of targets) {
    const client = new NodeCAClient(target, channelCredentials(credentials), channelOptions());
    try {
      return await new Promise<RenewedCertificate>((resolve, reject) => {
        client.renewNodeCertificate({ csr, addr }, new grpc.Metadata(), { deadline: Date.now() + RENEW_TIMEOUT_MS }, (error, response) =>
          error === null ? resolve(response) : reject(new Error(`${target}: ${error.details || error.message}`)),
        );
      });
    } catch (error) {
      lastError = error;
    } finally {
      client.close();
    }
  }
  throw lastError instanceof Error ? lastError : new Error('no manager to renew with');
}
