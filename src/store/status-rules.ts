// How a status write combines with what is stored: the one place where status transitions are decided, for every
// writer (CLI revoke, the imports, CRL downloads, the publishing API) and every backend.
import type { ReasonName } from '../ocsp/reasons';
import type { ChangeKind } from './response-store';
import type { CertificateRecord, ImportResult } from './status-store';

/** What a status write says about one certificate. */
export interface StatusWrite extends CertificateRecord {
  /**
   * A removeFromCRL entry (RFC 5280 section 5.3.1): it releases a certificateHold and says nothing else. It never
   * creates a record (an unknown serial stays unknown) and never touches a good or finally revoked one.
   */
  releaseOnly?: boolean;
}

/** What the write did to the certificate, as the imports count it and the publishing API reports it. */
export type WriteOutcome = 'inserted' | 'updated' | 'unchanged' | 'keptRevoked';

export interface MergeOutcome {
  outcome: WriteOutcome;
  /** The record to store, or undefined when nothing changes. */
  record: CertificateRecord | undefined;
  change: ChangeKind;
  /** The status (good/revoked, time or reason) changed: responses stored for the certificate must go. */
  statusChanged: boolean;
}

const HOLD: ReasonName = 'certificateHold';

/**
 * The transition rules (README "Status rules"):
 * - a revocation for any reason but certificateHold is final: it never becomes good or on hold again;
 * - a final revocation only moves towards keyCompromise (Baseline Requirements 4.9.1.1 and 7.2.2: a CA that learns
 *   of a key compromise updates the reason, and may backdate revocationDate to it); any other differing reason or
 *   date is ignored and counted as keptRevoked;
 * - certificateHold is released by a later good or removeFromCRL, and made final by a later revocation with
 *   another reason (its date and reason taken from that revocation); a repeated hold keeps the first hold's date.
 * notAfter and profile always follow the latest write that names them.
 */
export function mergeRecord(old: CertificateRecord | undefined, write: StatusWrite): MergeOutcome {
  // removeFromCRL is no revocation reason (RFC 5280 section 5.3.1), whichever writer names it: it releases a hold.
  const incoming: StatusWrite = write.status === 'revoked' && write.reason === 'removeFromCRL' ? { ca: write.ca, serial: write.serial, status: 'good', releaseOnly: true } : write;
  if (!old) {
    if (incoming.releaseOnly) return unchanged();
    const record = plain(incoming);
    return { outcome: 'inserted', record, change: record.status === 'revoked' ? 'revoked' : 'issued', statusChanged: false };
  }
  const details = { notAfter: incoming.notAfter ?? old.notAfter, profile: incoming.profile ?? old.profile };
  const { status, kept } = nextStatus(old, incoming);
  const merged = clean({ ...old, ...status, ...details });
  const statusChanged = !sameStatus(old, merged);
  if (!statusChanged && sameRecord(old, merged)) return { ...unchanged(), outcome: kept ? 'keptRevoked' : 'unchanged' };
  return {
    outcome: kept ? 'keptRevoked' : 'updated',
    record: merged,
    change: statusChanged && merged.status === 'revoked' ? 'revoked' : 'updated',
    statusChanged,
  };
}

/** The status part of the merged record, and whether the write was (partly) refused by finality. */
function nextStatus(old: CertificateRecord, w: StatusWrite): { status: Partial<CertificateRecord>; kept: boolean } {
  const current = statusOf(old);
  const final = old.status === 'revoked' && old.reason !== HOLD;
  if (w.releaseOnly) return { status: old.status === 'revoked' && old.reason === HOLD ? { status: 'good' } : current, kept: final };
  if (w.status === 'good') return final ? { status: current, kept: true } : { status: { status: 'good' }, kept: false };
  // w is a revocation.
  if (old.status === 'good') return { status: statusOf(w), kept: false };
  if (!final) return w.reason === HOLD ? { status: current, kept: false } : { status: statusOf(w), kept: false };
  if (w.reason === 'keyCompromise') {
    const earlier = w.revokedAt && (!old.revokedAt || w.revokedAt < old.revokedAt) ? w.revokedAt : old.revokedAt;
    const status = { status: 'revoked' as const, reason: 'keyCompromise' as const, ...(earlier ? { revokedAt: earlier } : {}) };
    // Kept in part when the write asked for a later date than the one stored.
    return { status, kept: w.revokedAt?.getTime() !== earlier?.getTime() };
  }
  return { status: current, kept: !sameStatus(old, w) };
}

/** Adds an outcome to an import's counts: keptRevoked is counted besides updated or unchanged. */
export function count(result: ImportResult, m: MergeOutcome): void {
  if (m.outcome === 'inserted') result.inserted++;
  else if (m.record) result.updated++;
  else result.unchanged++;
  if (m.outcome === 'keptRevoked') result.keptRevoked++;
}

export function emptyResult(): ImportResult {
  return { inserted: 0, updated: 0, unchanged: 0, keptRevoked: 0 };
}

/** A revocation as a status write (CLI revoke, the publishing API). */
export function revocation(ca: string, serial: string, revokedAt: Date, reason: ReasonName | undefined): StatusWrite {
  return { ca, serial, status: 'revoked', revokedAt, ...(reason ? { reason } : {}) };
}

function unchanged(): MergeOutcome {
  return { outcome: 'unchanged', record: undefined, change: 'updated', statusChanged: false };
}

function statusOf(r: CertificateRecord): Partial<CertificateRecord> {
  return { status: r.status, revokedAt: r.revokedAt, reason: r.reason };
}

/** A record without the write-only flag, and without revocation fields when good. */
function plain(w: StatusWrite): CertificateRecord {
  const { releaseOnly: _, ...rec } = w;
  return clean(rec);
}

function clean(r: CertificateRecord): CertificateRecord {
  const out: CertificateRecord = { ca: r.ca, serial: r.serial, status: r.status };
  if (r.status === 'revoked') {
    if (r.revokedAt) out.revokedAt = r.revokedAt;
    if (r.reason) out.reason = r.reason;
  }
  if (r.notAfter) out.notAfter = r.notAfter;
  if (r.profile !== undefined) out.profile = r.profile;
  return out;
}

function sameStatus(a: CertificateRecord, b: CertificateRecord): boolean {
  return a.status === b.status && a.revokedAt?.getTime() === b.revokedAt?.getTime() && a.reason === b.reason;
}

function sameRecord(a: CertificateRecord, b: CertificateRecord): boolean {
  return sameStatus(a, b) && a.notAfter?.getTime() === b.notAfter?.getTime() && a.profile === b.profile;
}
