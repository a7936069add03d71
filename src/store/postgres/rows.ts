// Converts between store records and PostgreSQL rows and parameters (times as ISO strings, DER as bytea).
import type { HashName } from '../../ocsp/oids';
import type { ReasonName } from '../../ocsp/reasons';
import type { StatusChange, StoredResponse } from '../response-store';
import type { CertificateRecord } from '../status-store';

export interface CertificateRow {
  ca: string;
  serial: string;
  status: 'good' | 'revoked';
  revoked_at: Date | null;
  reason: string | null;
  not_after: Date | null;
  profile: string | null;
  /** bigint: a string from node-postgres. */
  status_seq: string;
}

export interface ResponseRow {
  ca: string;
  serial: string;
  hash: string;
  produced_at: Date;
  this_update: Date;
  next_update: Date;
  final: boolean;
  cert_id: Buffer;
  der: Buffer;
  profile: string | null;
  status_seq: string;
  signer: string;
}

export interface ChangeRow {
  seq: string;
  ca: string;
  serial: string;
  kind: StatusChange['kind'];
  at: Date;
}

/** Dates go to the server as UTC ISO strings, not node-postgres's rendering in the process's local time zone. */
export function iso(d: Date): string;
export function iso(d: Date | undefined): string | null;
export function iso(d: Date | undefined): string | null {
  return d ? d.toISOString() : null;
}

/** Column values in the order of the certificates table (without updated_at), as the store writes them. */
export function certificateParams(r: CertificateRecord): [string, string, string, string | null, string | null, string | null, string | null] {
  const revoked = r.status === 'revoked';
  return [r.ca, r.serial, r.status, revoked ? iso(r.revokedAt) : null, revoked ? (r.reason ?? null) : null, iso(r.notAfter), r.profile ?? null];
}

/** The record as it reads back once stored (a good certificate keeps no revocation time or reason). */
export function asStored(r: CertificateRecord): CertificateRecord {
  const [ca, serial, status, revokedAt, reason, notAfter, profile] = certificateParams(r);
  const date = (s: string | null) => (s === null ? null : new Date(s));
  return fromCertificateRow({ ca, serial, status: status as CertificateRow['status'], revoked_at: date(revokedAt), reason, not_after: date(notAfter), profile, status_seq: String(r.version ?? 0) });
}

export function fromCertificateRow(row: CertificateRow): CertificateRecord {
  const rec: CertificateRecord = { ca: row.ca, serial: row.serial, status: row.status };
  if (row.revoked_at !== null) rec.revokedAt = row.revoked_at;
  if (row.reason !== null) rec.reason = row.reason as ReasonName;
  if (row.not_after !== null) rec.notAfter = row.not_after;
  if (row.profile !== null) rec.profile = row.profile;
  rec.version = Number(row.status_seq);
  return rec;
}

/** Column values in the order of the responses table. */
export function fromResponseRow(row: ResponseRow): StoredResponse {
  return {
    ca: row.ca,
    serial: row.serial,
    hash: row.hash as HashName,
    certIdDer: row.cert_id,
    der: row.der,
    producedAt: row.produced_at,
    thisUpdate: row.this_update,
    nextUpdate: row.next_update,
    final: row.final,
    ...(row.profile !== null ? { profile: row.profile } : {}),
    statusVersion: Number(row.status_seq),
    signer: row.signer,
  };
}

/** bigserial arrives as a string (int8 can exceed 2^53); sequence numbers stay far below that. */
export function fromChangeRow(row: ChangeRow): StatusChange {
  return { seq: Number(row.seq), ca: row.ca, serial: row.serial, kind: row.kind, at: row.at };
}
