/**
 * TLS to backends, for every thread that connects to them: the listener
 * threads (the fast path's upstream sockets, upgrades, undici on Node's
 * path) and the health checker. One SecureContext per CA file and thread,
 * made at the first connection that needs it (OpenSSL parses the bundle
 * once, not per connection), and made again after `forgetContexts()`
 * (every new backend set: a reload that replaced the file takes effect).
 */
import { readFileSync } from 'node:fs';
import { createSecureContext, type ConnectionOptions, type SecureContext } from 'node:tls';
import type { UpstreamTls } from '../protocol.ts';

/** The code of a request or probe that failed because TLS to the backend did (502). */
export const UPSTREAM_TLS_FAILED = 'SLUICE_UPSTREAM_TLS';

/** Node's roots (`ca: null`) under '', each CA file under its path. */
const contexts = new Map<string, SecureContext>();

function contextFor(ca: string | null): SecureContext {
  const key = ca ?? '';
  let context = contexts.get(key);
  if (!context) {
    context = createSecureContext(ca === null ? {} : { ca: readFileSync(ca) });
    contexts.set(key, context);
  }
  return context;
}

/** Contexts are made anew from the files at their next use. */
export function forgetContexts(): void {
  contexts.clear();
}

/** What `tls.connect` needs besides host and port. Throws when the CA file cannot be read any more. */
export function upstreamTlsOptions(tls: UpstreamTls): ConnectionOptions {
  return {
    secureContext: contextFor(tls.ca),
    // Node sends the host as SNI when it is a name, and checks the certificate against it.
    ...(tls.servername !== null && { servername: tls.servername }),
    rejectUnauthorized: tls.verify,
  };
}

/** One string per distinct setting: a kept connection serves only backends with the same. */
export const tlsIdentity = (tls: UpstreamTls): string => `${tls.servername ?? ''}\n${tls.ca ?? ''}\n${tls.verify}`;

/** OpenSSL's certificate verification results, as Node names them (`error.code`). */
const VERIFY_CODES = new Set([
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_CRL',
  'UNABLE_TO_DECRYPT_CERT_SIGNATURE',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CRL_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'CRL_HAS_EXPIRED',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_CHAIN_TOO_LONG',
  'CERT_REVOKED',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'HOSTNAME_MISMATCH',
]);

/**
 * A failure of TLS itself: the certificate did not verify (wrong CA, wrong
 * name, expired), or the handshake failed (`ERR_SSL_…`, e.g. a backend
 * that speaks plain HTTP). Connection errors (`ECONNREFUSED`…) are not.
 */
export const isTlsFailure = (code: string): boolean =>
  VERIFY_CODES.has(code) || code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_');
