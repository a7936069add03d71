// How a status write combines with what is stored: the same rules for every backend.
import type { ChangeKind } from './response-store';
import type { CertificateRecord, ImportResult } from './status-store';

/** The record to store and what changed, or undefined when the write changes nothing. */
export interface MergeOutcome {
  record: CertificateRecord;
  change: ChangeKind;
  /** The certificate's status changed: responses stored for it say something else and must go. */
  statusChanged: boolean;
}

/**
 * Revocation is final, except certificateHold which a later "good" releases (RFC 5280 removeFromCRL).
 * Counts into `result` the way `putCertificates` reports it.
 */
export function mergeRecord(old: CertificateRecord | undefined, incoming: CertificateRecord, result: ImportResult): MergeOutcome | undefined {
  if (!old) {
    result.inserted++;
    return { record: incoming, change: incoming.status === 'revoked' ? 'revoked' : 'issued', statusChanged: false };
  }
  let merged: CertificateRecord;
  if (old.status === 'revoked' && incoming.status === 'good' && old.reason !== 'certificateHold') {
    result.keptRevoked++;
    merged = { ...old, notAfter: incoming.notAfter ?? old.notAfter, profile: incoming.profile ?? old.profile };
  } else {
    merged = { ...incoming, notAfter: incoming.notAfter ?? old.notAfter, profile: incoming.profile ?? old.profile };
  }
  if (sameRecord(old, merged)) {
    result.unchanged++;
    return undefined;
  }
  result.updated++;
  const statusChanged = !sameStatus(old, merged);
  return { record: merged, change: statusChanged && merged.status === 'revoked' ? 'revoked' : 'updated', statusChanged };
}

/** What revoke() stores: the old record (or a new one) revoked at `revokedAt` for `reason`. */
export function revokedRecord(old: CertificateRecord | undefined, ca: string, serial: string, revokedAt: Date, reason: CertificateRecord['reason']): CertificateRecord {
  const base: CertificateRecord = old ?? { ca, serial, status: 'good' };
  return { ...base, status: 'revoked', revokedAt, ...(reason ? { reason } : {}) };
}

function sameStatus(a: CertificateRecord, b: CertificateRecord): boolean {
  return a.status === b.status && a.revokedAt?.getTime() === b.revokedAt?.getTime() && a.reason === b.reason;
}

function sameRecord(a: CertificateRecord, b: CertificateRecord): boolean {
  return sameStatus(a, b) && a.notAfter?.getTime() === b.notAfter?.getTime() && a.profile === b.profile;
}
