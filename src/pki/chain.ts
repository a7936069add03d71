// Builds a certificate's issuer chain from the configured CA certificates, as EJBCA does for OCSP signers.
import type { LoadedCertificate } from './certificate';

/**
 * The issuers of `cert`, nearest first, up to a self-signed root: at each step the latest (notBefore) CA
 * certificate whose subject equals the issuer name; when that one does not verify the signature (names repeat
 * after a CA key renewal), the one that does. Stops where no configured certificate issued the last one.
 */
export function buildChain(cert: LoadedCertificate, candidates: readonly LoadedCertificate[]): LoadedCertificate[] {
  const chain: LoadedCertificate[] = [];
  let current = cert;
  while (!issuedBy(current, current) && chain.length < 10) {
    const sameName = candidates
      .filter((c) => c.x509.subject === current.x509.issuer)
      .sort((a, b) => Date.parse(b.x509.validFrom) - Date.parse(a.x509.validFrom));
    const issuer = sameName.find((c) => issuedBy(current, c));
    if (!issuer || chain.includes(issuer)) break;
    chain.push(issuer);
    current = issuer;
  }
  return chain;
}

/** `issuer` issued `cert`: names chain and the signature verifies with issuer's key. */
export function issuedBy(cert: LoadedCertificate, issuer: LoadedCertificate): boolean {
  return cert.x509.checkIssued(issuer.x509) && cert.x509.verify(issuer.x509.publicKey);
}
