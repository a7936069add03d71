// The certificate status store interface: what the responder knows about each certificate of each CA.
import type { ReasonName } from '../ocsp/reasons';
import type { StatusWrite, WriteOutcome } from './status-rules';

export interface CertificateRecord {
  ca: string;
  /** Canonical lowercase hex (see ocsp/serial.ts). */
  serial: string;
  status: 'good' | 'revoked';
  revokedAt?: Date;
  reason?: ReasonName;
  notAfter?: Date;
  profile?: string;
  /**
   * The sequence number of the certificate's latest status change (StatusChange.seq) when read from the store; 0
   * for records older than versions. A response made from this record carries it, and is stored or cached only
   * while it is still the latest (a compare-and-set): a revocation that lands while it is signed wins.
   */
  version?: number;
}

export interface ImportResult {
  inserted: number;
  updated: number;
  unchanged: number;
  /**
   * Entries whose input contradicted a final revocation (said good, on hold, or another reason or date) and were
   * left as stored (status-rules.ts). Also counted in updated or unchanged.
   */
  keptRevoked: number;
}

export interface RevokeResult {
  /** The serial was not in the store before. */
  created: boolean;
  outcome: WriteOutcome;
  /** The record as stored after the write; undefined only after removeFromCRL for a serial never seen. */
  record: CertificateRecord | undefined;
}

export interface StatusStore {
  getCertificate(ca: string, serial: string): Promise<CertificateRecord | undefined>;
  /**
   * One CA's certificates in serial text order (bytewise), keyset-paged: those with a serial greater than
   * `after` ('' for the first page), at most `limit`. For walking a whole CA without holding it in memory.
   */
  listCertificates(ca: string, after: string, limit: number): Promise<CertificateRecord[]>;
  /**
   * Merges all writes with what is stored (status-rules.ts) in one transaction: on any error nothing is written.
   * Waits for other writers (up to the store's write timeout) rather than failing.
   */
  putCertificates(records: StatusWrite[]): Promise<ImportResult>;
  /** Records a revocation under the same rules: a final revocation is never put on hold or given another reason. */
  revoke(ca: string, serial: string, revokedAt: Date, reason: ReasonName): Promise<RevokeResult>;
  /** Cheap query proving the store answers (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;
}
