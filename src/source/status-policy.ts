// What one SingleResponse says under an authority's policies: the status (issuer revocation, non-issued serials),
// how long it is valid (certificate profile first) and its singleExtensions (archive cutoff).
import { archiveCutoffExtension, CertStatus } from '../ocsp/response';
import type { ReasonName } from '../ocsp/reasons';
import type { CertificateRecord } from '../store/status-store';

/** How serials the store has never heard of are answered (RFC 6960 section 2.2). */
export type NonIssuedPolicy = 'unknown' | 'revoked' | 'good';

export interface StatusPolicy {
  nonIssued: NonIssuedPolicy;
  /** Retention interval: archiveCutoff = producedAt minus this (RFC 6960 section 4.4.4); undefined: none. */
  archiveCutoffMs: number | undefined;
  /** Binding (or default) validity; 0: no nextUpdate. */
  validityMs: number;
  /** Per certificate profile validity: wins over the binding's and the default (EJBCA ocsp.<id>.untilNextUpdate). */
  profileValidityMs: ReadonlyMap<string, number>;
  /** How long HTTP caches may keep a GET answer (RFC 9919 section 6.2); undefined: until its nextUpdate. */
  maxAgeMs: number | undefined;
  /** Per certificate profile maxAge, winning over the binding's (EJBCA ocsp.<id>.maxAge). */
  profileMaxAgeMs: ReadonlyMap<string, number>;
  /** When the CA certificate itself is revoked for a key-compromise reason, when (see issuerRevocation). */
  issuerRevokedAt: () => Date | undefined;
}

/** Reasons of a CA certificate's revocation that make every certificate it issued revoked (RFC 6960 section 2.7). */
export const ISSUER_COMPROMISE_REASONS: ReadonlySet<ReasonName | undefined> = new Set<ReasonName | undefined>([
  'keyCompromise', 'cACompromise', 'aACompromise', 'unspecified', undefined,
]);

/** RFC 6960 section 2.2: a non-issued serial answered "revoked" says certificateHold at the epoch. */
const NON_ISSUED_REVOKED: CertStatus = { kind: 'revoked', revokedAt: new Date(0), reason: 'certificateHold' };

export interface SingleAnswer {
  status: CertStatus;
  /** The revoked answer for a non-issued serial: the response must carry the extended revoked definition. */
  nonIssuedRevoked: boolean;
}

export function answerFor(p: StatusPolicy, rec: CertificateRecord | undefined): SingleAnswer {
  const issuerRevokedAt = p.issuerRevokedAt();
  if (issuerRevokedAt) return { status: { kind: 'revoked', revokedAt: issuerRevokedAt, reason: 'cACompromise' }, nonIssuedRevoked: false };
  if (!rec) {
    if (p.nonIssued === 'revoked') return { status: NON_ISSUED_REVOKED, nonIssuedRevoked: true };
    return { status: { kind: p.nonIssued }, nonIssuedRevoked: false };
  }
  if (rec.status === 'good') return { status: { kind: 'good' }, nonIssuedRevoked: false };
  return { status: { kind: 'revoked', revokedAt: rec.revokedAt ?? new Date(0), ...(rec.reason ? { reason: rec.reason } : {}) }, nonIssuedRevoked: false };
}

/** The profile's validity when it has one, else the binding's. */
export function validityFor(p: StatusPolicy, rec: CertificateRecord | undefined): number {
  return (rec?.profile !== undefined ? p.profileValidityMs.get(rec.profile) : undefined) ?? p.validityMs;
}

/** The profile's maxAge when it has one, else the binding's (undefined: until nextUpdate). */
export function maxAgeFor(p: StatusPolicy, profile: string | undefined): number | undefined {
  return (profile !== undefined ? p.profileMaxAgeMs.get(profile) : undefined) ?? p.maxAgeMs;
}

export function singleExtensionsFor(p: StatusPolicy, producedAt: Date): Buffer[] | undefined {
  return p.archiveCutoffMs === undefined ? undefined : [archiveCutoffExtension(new Date(producedAt.getTime() - p.archiveCutoffMs))];
}
