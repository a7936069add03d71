// The pre-produced response store interface (RFC 6960 section 2.5) and the change feed that keeps caches honest.
import type { HashName } from '../ocsp/oids';
import type { CrlStateStore } from './crl-state';
import type { LeaseFence, LeaseStore } from './lease-store';
import type { ResponderStore } from './responder-store';
import type { CertificateRecord, StatusStore } from './status-store';

/** One persisted response: a complete OCSPResponse for one certificate, as signed for one CertID hash. */
export interface StoredResponse {
  ca: string;
  /** Canonical lowercase hex (see ocsp/serial.ts). */
  serial: string;
  /** Hash of the CertID inside; a SHA-1 client and a SHA-256 client each get their own response. */
  hash: HashName;
  /** The CertID inside the response: a request is answered from it only when its CertID is the same bytes. */
  certIdDer: Buffer;
  der: Buffer;
  producedAt: Date;
  thisUpdate: Date;
  nextUpdate: Date;
  /** A final response (nextUpdate 9999-12-31, issued before the CA expires): nothing newer is ever stored. */
  final: boolean;
  /** The certificate's profile when it was produced (its maxAge may differ). */
  profile?: string;
  /** The certificate record's version it was made from (CertificateRecord.version). */
  statusVersion: number;
  /**
   * Who signed it (Authority.signerId): after a key or certificate rotation, another signer's responses are neither
   * served nor count as fresh or final. '' for responses stored before this was recorded.
   */
  signer: string;
}

export interface PutResponsesResult {
  stored: number;
  /** Not stored because a final response for the same certificate and hash exists. */
  skippedFinal: number;
  /**
   * Not stored because the certificate's status changed after the response was made from it, or because the lease
   * the batch was made under (its fence) is no longer the writer's.
   */
  stale: number;
}

/** refreshBefore that makes every non-final response due (`presign --all`); a date every store can hold. */
export const EVERYTHING_DUE = new Date('9999-12-31T23:59:59Z');

export interface DueQuery {
  ca: string;
  hash: HashName;
  /** A response whose thisUpdate is at or before this is due for refresh (refreshAfter of the CA's validity ago). */
  refreshBefore: Date;
  /**
   * Also due: a response past refreshAfter of its own validity (thisUpdate to nextUpdate) at refreshAt. A profile's
   * validity shorter than the CA's, or a validity lengthened since it was signed, would otherwise let it expire first.
   */
  refreshAfter: number;
  refreshAt: Date;
  /** In the final-response window: every certificate without a final response is due. */
  needFinal: boolean;
  /** The signer responses must be from to count (Authority.signerId): a rotation makes every other one due. */
  signer: string;
  /** Certificates whose notAfter is before this are skipped (no need to keep answering for them). */
  notExpiredAt?: Date;
  /** Keyset pagination: only serials greater than this (text order), in ascending order. */
  after: string;
  limit: number;
}

/** Where a listing of stored responses stopped: the primary key of the last response returned. */
export interface ResponseKey {
  serial: string;
  hash: HashName;
  producedAt: Date;
}

/** What answering from a stored response needs: all of it but the CertID bytes and the final flag. */
export type ServableResponse = Omit<StoredResponse, 'certIdDer' | 'final'>;

export interface ResponseStore {
  /** The latest stored response (by producedAt) for the certificate and hash. */
  getResponse(ca: string, serial: string, hash: HashName): Promise<StoredResponse | undefined>;
  /**
   * getResponse answered at once, for a store that reads without waiting (SQLite, on the event loop): a store hit
   * is then answered in the tick its request arrived, without a promise. Absent on a store that must wait (PostgreSQL).
   */
  getResponseNow?(ca: string, serial: string, hash: HashName): ServableResponse | undefined;
  /**
   * Every stored response of one CA (superseded ones too), ordered by serial (bytewise), hash and producedAt,
   * keyset-paged: those after `after` (undefined for the first page), at most `limit`.
   */
  listResponses(ca: string, after: ResponseKey | undefined, limit: number): Promise<StoredResponse[]>;
  /**
   * Persists in one transaction, each response only if it was made from the certificate's current version (a
   * compare-and-set against CertificateRecord.version) and no final one by the same signer exists for the
   * certificate and hash. With a `fence` (work done under a lease: the pre-signer, production upon change), nothing
   * is stored unless that hold is still the lease's, checked in the same transaction; every response then counts
   * as stale.
   */
  putResponses(responses: StoredResponse[], fence?: LeaseFence): Promise<PutResponsesResult>;
  /** Certificates that need a new response for `hash` by `signer`: none stored, due for refresh, or (needFinal) not final. */
  certificatesDue(q: DueQuery): Promise<CertificateRecord[]>;
  /** How many certificates `certificatesDue` would return without paging (for progress and ETA). */
  countDue(q: Omit<DueQuery, 'after' | 'limit'>): Promise<number>;
  /** The earliest nextUpdate among the latest stored response per certificate and hash of a CA (undefined: none). */
  earliestNextUpdate(ca: string): Promise<Date | undefined>;
  /**
   * How many of the latest responses per certificate and hash by `signer` (those served) were due to be replaced by
   * `at` under the CA/B Forum's update deadline (compliance/cabf-timing.ts requiredUpdateMs), leaving out certificates
   * that expired before their deadline.
   */
  countPastUpdateTime(ca: string, signer: string, at: Date): Promise<number>;
  /** Removes every response except the latest producedAt per certificate and hash; returns how many went. */
  deleteSuperseded(): Promise<number>;
}

export type ChangeKind = 'issued' | 'revoked' | 'updated';

/** A certificate whose status was recorded or changed; responses and caches for it must not outlive the change. */
export interface StatusChange {
  seq: number;
  ca: string;
  serial: string;
  kind: ChangeKind;
  /** When it was recorded (the writer's clock). */
  at: Date;
}

export interface ChangeFeed {
  /** The highest change sequence number recorded so far (0 when none); cheap enough to poll. */
  lastChange(): Promise<number>;
  /** Changes with seq greater than `seq`, in order, at most `limit`. */
  changesSince(seq: number, limit: number): Promise<StatusChange[]>;
  /**
   * True when mayHaveChanged() sees every commit of other connections the moment it is made (SQLite): the feed is
   * then current whenever it says false. False when changes are pushed (PostgreSQL): currency must be proved by
   * reading lastChange().
   */
  readonly exact: boolean;
  /**
   * Synchronous and cheap: true when another connection or process may have written since the last call.
   * SQLite answers exactly (PRAGMA data_version), so a cache can check it on every hit; a backend that pushes
   * changes instead (PostgreSQL LISTEN/NOTIFY) answers false and calls the `watch` listener.
   */
  mayHaveChanged(): boolean;
  /** Calls `listener` when changes may have been recorded elsewhere; returns a function that stops watching. */
  watch(listener: () => void): () => void;
  /** Removes change records older than `before`; returns how many went. */
  pruneChanges(before: Date): Promise<number>;
}

/**
 * Everything the responder persists. Status writes (putCertificates, revoke) also record a StatusChange, set the
 * certificate's version to its seq and, when its status changed, delete its stored responses, all in the same
 * transaction; with putResponses' compare-and-set, a stored answer never contradicts the recorded status.
 */
export type Store = StatusStore & ResponseStore & ChangeFeed & CrlStateStore & LeaseStore & ResponderStore;
