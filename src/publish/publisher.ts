// Records the events CAs publish through the store's status writes (the merge rules of store/status-rules.ts),
// then lets the daemon's change follower react as it does to the CLI's writes.
import type { Clock } from '../clock';
import { parseSerial } from '../ocsp/serial';
import type { LoadedCertificate } from '../pki/certificate';
import { issuedBy } from '../pki/chain';
import { revocation, StatusWrite, WriteOutcome } from '../store/status-rules';
import type { CertificateRecord, ImportResult, StatusStore } from '../store/status-store';
import { PublishError } from './errors';
import type { IssuanceEvent, RevocationEvent } from './events';
import { parseIssuance, parseRevocation } from './events';
import { LateAnswers, recordedLate } from '../compliance/late-answers';

/** What the write did: a repeated event is `unchanged`; `keptRevoked` when a final revocation kept it from applying. */
export type Outcome = WriteOutcome;

export interface Recorded {
  outcome: Outcome;
  /** The record as stored after the write. */
  record: CertificateRecord;
  /** The record's version: the seq of its latest status change, which `?wait=all` waits for (0 for old records). */
  version: number;
}

export interface PublisherOptions {
  store: StatusStore;
  /**
   * CA certificates by configured CA name (the current key and any previous ones): the CAs that may publish, and
   * what their certificates must verify with.
   */
  cas: ReadonlyMap<string, readonly LoadedCertificate[]>;
  clock: Clock;
  /**
   * Called after a write that changed something, before answering. The daemon passes its change follower's apply():
   * SQLite does not tell a connection of its own writes, so without it cached answers would outlive the change.
   */
  afterWrite: () => Promise<void>;
  warn: (fields: object, message: string) => void;
  /** Told of certificates recorded more than 15 minutes after their publishedAt (BR 4.9.9). */
  late?: LateAnswers;
}

export class Publisher {
  constructor(private readonly o: PublisherOptions) {}

  /** The CA's configured name, or a 404 naming the path's CA. */
  ca(name: string): string {
    if (!this.o.cas.has(name)) throw new PublishError(404, 'ca', `no CA named "${name}" is configured`);
    return name;
  }

  async issued(ca: string, ev: IssuanceEvent): Promise<Recorded> {
    let rec: CertificateRecord;
    if ('certificate' in ev) {
      const c = ev.certificate;
      const issuers = this.o.cas.get(ca)!;
      // A self-signed CA certificate verifies under itself, but OCSP answers for what the CA issued, not for the CA.
      if (issuers.some((i) => c.der.equals(i.der))) throw new PublishError(422, 'certificate', `this is CA "${ca}"'s own certificate, not one it issued`);
      if (!issuers.some((i) => issuedBy(c, i))) {
        throw new PublishError(422, 'certificate', `the certificate with serial ${c.x509.serialNumber} was not issued by CA "${ca}"`);
      }
      rec = { ca, serial: parseSerial(c.x509.serialNumber), status: 'good', notAfter: new Date(c.x509.validTo) };
    } else {
      rec = { ca, serial: ev.serial, status: 'good', ...(ev.notAfter ? { notAfter: ev.notAfter } : {}) };
    }
    if (ev.profile !== undefined) rec.profile = ev.profile;
    const r = (await this.write(rec))!;
    const late = recordedLate(r.outcome === 'inserted' ? 1 : 0, ev.publishedAt, this.o.clock.now());
    if (late > 0) this.o.late?.recordedLate(ca, 'publishing', late);
    return r;
  }

  /**
   * The store's merge rules decide (status-rules.ts), in the write's own transaction: no read-then-write race with
   * other writers. An event a final revocation refuses is a 409 naming what stays stored.
   */
  async revoked(ca: string, ev: RevocationEvent): Promise<Recorded> {
    if (ev.reason === 'removeFromCRL') {
      // RFC 5280 section 5.3.1: removeFromCRL takes a certificate off hold and does nothing else.
      const r = await this.write({ ca, serial: ev.serial, status: 'good', releaseOnly: true });
      if (!r) throw new PublishError(404, 'serial', `${ca} serial ${ev.serial} is not in the store: there is no hold to release`);
      if (r.outcome === 'keptRevoked') throw finalRevocation(r.record);
      return r;
    }
    const r = (await this.write(revocation(ca, ev.serial, ev.revokedAt, ev.reason)))!;
    // A hold or another reason for a final revocation: refused. A later keyCompromise date keeps the earlier one.
    if (r.outcome === 'keptRevoked' && r.record.reason !== ev.reason) throw finalRevocation(r.record);
    return r;
  }

  async get(ca: string, serial: string): Promise<CertificateRecord> {
    const stored = await this.o.store.getCertificate(ca, serial);
    if (!stored) throw new PublishError(404, 'serial', `${ca} serial ${serial} is not in the store`);
    const { version: _, ...rec } = stored;
    return rec;
  }

  /** Parses with this publisher's clock (publishedAt may not be in the future). */
  parseIssuance(body: unknown): IssuanceEvent {
    return parseIssuance(body, this.o.clock.now());
  }

  /** Parses with this publisher's clock (revokedAt may not be in the future). */
  parseRevocation(body: unknown): RevocationEvent {
    return parseRevocation(body, this.o.clock.now());
  }

  /** undefined: nothing is stored for the serial (a release of an unknown serial). */
  private async write(rec: StatusWrite): Promise<Recorded | undefined> {
    const result = await this.o.store.putCertificates([rec]);
    const outcome = outcomeOf(result);
    if (result.inserted + result.updated > 0) {
      // Answered only once this responder applied the change: the answer is the acknowledgement a CA relies on. The
      // write is committed whatever happens here; the follower retries until it has applied it.
      await this.o.afterWrite().catch((e: Error) => this.o.warn({ ca: rec.ca, serial: rec.serial, err: e.message }, 'could not apply a published change at once'));
    }
    const stored = await this.o.store.getCertificate(rec.ca, rec.serial);
    if (!stored) {
      if (rec.releaseOnly) return undefined;
      throw new Error(`${rec.ca} serial ${rec.serial} was written but cannot be read back`);
    }
    const { version, ...record } = stored;
    return { outcome, record, version: version ?? 0 };
  }
}

function outcomeOf(r: ImportResult): Outcome {
  // mergeRecord counts a kept revocation also as unchanged or updated: it is the one to report.
  if (r.keptRevoked > 0) return 'keptRevoked';
  if (r.inserted > 0) return 'inserted';
  return r.updated > 0 ? 'updated' : 'unchanged';
}

function finalRevocation(rec: CertificateRecord): PublishError {
  return new PublishError(409, 'reason', `${rec.ca} serial ${rec.serial} is revoked (${rec.reason ?? 'no reason'}): revocation is final, only certificateHold is released`);
}
