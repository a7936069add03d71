// Whether a certificate is within its validity period at a given time: a signer outside it must not sign.
import type { X509Certificate } from 'node:crypto';

export interface Validity {
  notBefore: number;
  notAfter: number;
}

export function validityOf(x509: X509Certificate): Validity {
  return { notBefore: Date.parse(x509.validFrom), notAfter: Date.parse(x509.validTo) };
}

/** Why the certificate cannot be used at `nowMs` (expired or not yet valid), or undefined when it can. */
export function validityProblem(x509: X509Certificate, nowMs: number): string | undefined {
  const { notBefore, notAfter } = validityOf(x509);
  if (nowMs > notAfter) return `certificate expired at ${new Date(notAfter).toISOString()}`;
  if (nowMs < notBefore) return `certificate is not valid before ${new Date(notBefore).toISOString()}`;
  return undefined;
}

/**
 * Milliseconds left when the certificate is still valid at `nowMs` but expires within `warnMs` (the
 * certificates.expiryWarning of startup, reload and config check), else undefined.
 */
export function expiresWithin(x509: X509Certificate, nowMs: number, warnMs: number): number | undefined {
  const left = validityOf(x509).notAfter - nowMs;
  return left >= 0 && left <= warnMs ? left : undefined;
}
