// Compares two statements of a certificate's status (reference against store) and writes them as text.
import type { ReasonName } from '../ocsp/reasons';

export interface StatusFacts {
  status: 'good' | 'revoked';
  revokedAt?: Date;
  reason?: ReasonName;
}

export type StatusField = 'status' | 'revokedAt' | 'reason';

/**
 * The fields in which `a` and `b` differ. Times compare in whole seconds: index.txt, CRLs and OCSP responses
 * carry no fractions, so a revocation recorded with milliseconds is still the same revocation. A missing reason
 * equals unspecified: RFC 5280 section 5.3.1 says unspecified SHOULD be left out of CRLs.
 */
export function differingFields(a: StatusFacts, b: StatusFacts): StatusField[] {
  if (a.status !== b.status) return ['status'];
  if (a.status === 'good') return [];
  const fields: StatusField[] = [];
  if (seconds(a.revokedAt) !== seconds(b.revokedAt)) fields.push('revokedAt');
  if ((a.reason ?? 'unspecified') !== (b.reason ?? 'unspecified')) fields.push('reason');
  return fields;
}

/** "good", or "revoked <ISO time> <reason>" with "-" for what is not recorded. */
export function describeStatus(f: StatusFacts): string {
  if (f.status === 'good') return 'good';
  return `revoked ${f.revokedAt ? isoSeconds(f.revokedAt) : '-'} ${f.reason ?? '-'}`;
}

export function isoSeconds(d: Date): string {
  return new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

function seconds(d: Date | undefined): number | undefined {
  return d === undefined ? undefined : Math.floor(d.getTime() / 1000);
}
