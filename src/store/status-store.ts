// The certificate status store interface: what the responder knows about each certificate of each CA.
import type { ReasonName } from '../ocsp/reasons';

export interface CertificateRecord {
  ca: string;
  /** Canonical lowercase hex (see ocsp/serial.ts). */
  serial: string;
  status: 'good' | 'revoked';
  revokedAt?: Date;
  reason?: ReasonName;
  notAfter?: Date;
  profile?: string;
}

export interface ImportResult {
  inserted: number;
  updated: number;
  unchanged: number;
  /** Entries left revoked because the input said good: revocation is final except certificateHold. */
  keptRevoked: number;
}

export interface StatusStore {
  getCertificate(ca: string, serial: string): Promise<CertificateRecord | undefined>;
  /**
   * One CA's certificates in serial text order (bytewise), keyset-paged: those with a serial greater than
   * `after` ('' for the first page), at most `limit`. For walking a whole CA without holding it in memory.
   */
  listCertificates(ca: string, after: string, limit: number): Promise<CertificateRecord[]>;
  /** Inserts or updates all records in one transaction: on any error nothing is written. */
  putCertificates(records: CertificateRecord[]): Promise<ImportResult>;
  /** Records a revocation; `created` tells whether the serial was unknown before. */
  revoke(ca: string, serial: string, revokedAt: Date, reason: ReasonName): Promise<{ created: boolean }>;
  /** Cheap query proving the store answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
