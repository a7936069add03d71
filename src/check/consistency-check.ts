// Checks one CA's store entries against a reference (index.txt or CRL) and its stored responses against the
// store, as EJBCA's ocspmon does: missing, extra and tampered entries. Walks the store a page at a time.
import type { ResponseKey, Store, StoredResponse } from '../store/response-store';
import type { CertificateRecord } from '../store/status-store';
import { PagedCursor } from './paged-cursor';
import type { Reference, ReferenceEntry } from './reference';
import { Binding, responseProblems } from './response-check';
import { describeStatus, differingFields, isoSeconds } from './status-compare';

export type FindingKind = 'missing' | 'extra' | 'differing' | 'bad-response';

/** One inconsistency; printed as `<kind> <serial> <detail>`. */
export interface Finding {
  kind: FindingKind;
  serial: string;
  detail: string;
}

export interface CheckResult {
  missing: number;
  extra: number;
  differing: number;
  badResponses: number;
  referenceEntries: number;
  storeEntries: number;
  responsesChecked: number;
  /** Revoked store entries of certificates that expired before the CRL was issued: a CRL may leave them out. */
  expiredNotOnCrl: number;
}

export interface CheckOptions {
  store: Store;
  ca: string;
  reference: Reference;
  binding: Binding;
  /** The CA is under compliance: cabf: stored responses are held to the Baseline Requirements too, at this time. */
  cabfAt?: Date;
  /** Findings, grouped: missing, extra, differing, then bad responses. */
  report: (f: Finding) => void;
  pageSize?: number;
}

export async function checkConsistency(o: CheckOptions): Promise<CheckResult> {
  const pageSize = o.pageSize ?? 1000;
  const result: CheckResult = {
    missing: 0, extra: 0, differing: 0, badResponses: 0,
    referenceEntries: o.reference.entries.length, storeEntries: 0, responsesChecked: 0, expiredNotOnCrl: 0,
  };
  // Entry findings are held until the walk ends so that they come out grouped; they are few unless all is wrong.
  const groups: Record<'missing' | 'extra' | 'differing', Finding[]> = { missing: [], extra: [], differing: [] };
  const add = (f: Finding & { kind: keyof typeof groups }) => groups[f.kind].push(f);
  const certs = certificateCursor(o.store, o.ca, pageSize);
  const ref = o.reference.entries;
  let r = 0;
  // A merge of two lists in the same (bytewise) serial order.
  for (let rec = await certs.next(); rec; rec = await certs.next()) {
    result.storeEntries++;
    for (; r < ref.length && ref[r]!.serial < rec.serial; r++) add(missing(ref[r]!));
    if (r < ref.length && ref[r]!.serial === rec.serial) {
      const entry = ref[r++]!;
      const fields = differingFields(rec, entry);
      if (fields.length > 0) {
        add({ kind: 'differing', serial: rec.serial, detail: `${fields.join(',')} store: ${describeStatus(rec)}; reference: ${describeStatus(entry)}` });
      }
      continue;
    }
    const listed = o.reference.wouldList(rec);
    if (listed === 'yes') add({ kind: 'extra', serial: rec.serial, detail: describeStatus(rec) });
    else if (listed === 'expired') result.expiredNotOnCrl++;
  }
  for (; r < ref.length; r++) add(missing(ref[r]!));
  for (const kind of ['missing', 'extra', 'differing'] as const) {
    result[kind] = groups[kind].length;
    groups[kind].forEach(o.report);
  }
  await checkResponses(o, pageSize, result);
  return result;
}

function missing(e: ReferenceEntry): Finding & { kind: 'missing' } {
  return { kind: 'missing', serial: e.serial, detail: describeStatus(e) };
}

// Responses and certificates are both listed in serial order: each response meets its certificate in one pass.
async function checkResponses(o: CheckOptions, pageSize: number, result: CheckResult): Promise<void> {
  const responses = new PagedCursor<StoredResponse>((last, limit) => o.store.listResponses(o.ca, last && responseKey(last), limit), pageSize);
  const certs = certificateCursor(o.store, o.ca, pageSize);
  for (let resp = await responses.next(); resp; resp = await responses.next()) {
    result.responsesChecked++;
    // Listed by serial, hash and producedAt: the last of a serial and hash is the one served.
    const following = await responses.peek();
    const latest = following?.serial !== resp.serial || following.hash !== resp.hash;
    let cert = await certs.peek();
    while (cert && cert.serial < resp.serial) {
      await certs.next();
      cert = await certs.peek();
    }
    const cabf = o.cabfAt && { nowMs: o.cabfAt.getTime(), latest };
    const problems = await responseProblems(resp, cert?.serial === resp.serial ? cert : undefined, o.binding, cabf);
    if (problems.length === 0) continue;
    result.badResponses++;
    o.report({ kind: 'bad-response', serial: resp.serial, detail: `${resp.hash} ${isoSeconds(resp.producedAt)} ${problems.join('; ')}` });
  }
}

function certificateCursor(store: Store, ca: string, pageSize: number): PagedCursor<CertificateRecord> {
  return new PagedCursor((last, limit) => store.listCertificates(ca, last?.serial ?? '', limit), pageSize);
}

function responseKey(r: StoredResponse): ResponseKey {
  return { serial: r.serial, hash: r.hash, producedAt: r.producedAt };
}
