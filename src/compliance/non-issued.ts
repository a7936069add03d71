// BR 4.9.9: an unassigned serial is never answered "good" unless the CA is Technically Constrained (BR 7.1.2.3,
// 7.1.2.5). Decided from the CA certificate, so it is checked where certificates are read.
import type { LoadedCertificate } from '../pki/certificate';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const ANY_EXTENDED_KEY_USAGE = '2.5.29.37.0';
const NAME_CONSTRAINTS = '2.5.29.30';

/**
 * 7.1.2.3: an extendedKeyUsage without id-kp-serverAuth and anyExtendedKeyUsage (a non-TLS CA); 7.1.2.5: with
 * id-kp-serverAuth, and nameConstraints. A CA certificate without extendedKeyUsage is constrained by neither.
 */
export function technicallyConstrained(ca: LoadedCertificate): boolean {
  const eku = ca.x509.keyUsage;
  if (!eku || eku.length === 0 || eku.includes(ANY_EXTENDED_KEY_USAGE)) return false;
  if (!eku.includes(SERVER_AUTH)) return true;
  return (ca.cert.extensions ?? []).some((e) => e.extnID === NAME_CONSTRAINTS);
}

/** The refusal for `nonIssued: good` on a CA under `compliance: cabf` whose certificate is not constrained, or undefined. */
export function nonIssuedGoodProblem(field: string, caCertField: string, ca: LoadedCertificate): string | undefined {
  if (technicallyConstrained(ca)) return undefined;
  return `${field}: good answers unassigned serials "good", which BR 4.9.9 forbids unless the CA is Technically Constrained (BR 7.1.2.3, 7.1.2.5); ${caCertField} has no extendedKeyUsage without serverAuth, nor serverAuth with nameConstraints (compliance: cabf)`;
}
