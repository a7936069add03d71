// The contract every Store backend honours (statuses, pre-produced responses, change feed): run on SQLite and
// on PostgreSQL with the same cases.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HashName } from '../../src/ocsp/oids';
import { EVERYTHING_DUE, Store, StoredResponse } from '../../src/store/response-store';
import type { CertificateRecord } from '../../src/store/status-store';
import { describeCrlState } from './describe-crl-state';
import { describeResponderStore } from './describe-responders';

/** `make` returns an empty store; `other` (optional) opens a second connection to the same one. */
export function describeStore(name: string, make: () => Promise<Store>, other?: (s: Store) => Promise<Store>): void {
  describeStatusStore(name, make);
  describeResponseStore(name, make);
  describeChangeFeed(name, make, other);
  describeCrlState(name, make);
  describeResponderStore(name, make);
}

const T0 = Date.parse('2026-06-01T00:00:00Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000);

export function response(serial: string, hash: HashName, producedMin: number, extra: Partial<StoredResponse> = {}): StoredResponse {
  return {
    ca: 'ca1', serial, hash, certIdDer: Buffer.from(`certid-${hash}-${serial}`), der: Buffer.from(`der-${serial}-${hash}-${producedMin}`),
    producedAt: at(producedMin), thisUpdate: at(producedMin), nextUpdate: at(producedMin + 60), final: false, statusVersion: 0, signer: 'S1', ...extra,
  };
}

/** The responses as made from their certificates' current records (a good one recorded first where missing). */
export async function stamp(s: Store, rs: StoredResponse[]): Promise<StoredResponse[]> {
  const out: StoredResponse[] = [];
  for (const r of rs) {
    let rec = await s.getCertificate(r.ca, r.serial);
    if (!rec) {
      await s.putCertificates([{ ca: r.ca, serial: r.serial, status: 'good' }]);
      rec = (await s.getCertificate(r.ca, r.serial))!;
    }
    out.push({ ...r, statusVersion: rec.version! });
  }
  return out;
}

/** putResponses of responses made from the current records. */
async function put(s: Store, rs: StoredResponse[]) {
  return s.putResponses(await stamp(s, rs));
}

/** A response without the version it was made from, to compare with response(). */
function bare(r: StoredResponse | undefined): Omit<StoredResponse, 'statusVersion'> | undefined {
  if (!r) return r;
  const { statusVersion: _, ...rest } = r;
  return rest;
}

function describeResponseStore(name: string, make: () => Promise<Store>): void {
  describe(`ResponseStore contract: ${name}`, () => {
    it('returns the latest response per certificate and hash, bytes intact', async () => {
      const s = await make();
      await s.putCertificates([{ ca: 'ca1', serial: '1', status: 'good' }]);
      const r = await put(s, [response('1', 'sha1', 0), response('1', 'sha1', 10, { profile: 'short-lived' }), response('1', 'sha256', 5)]);
      assert.deepEqual(r, { stored: 3, skippedFinal: 0, stale: 0 });
      // The profile it was produced under comes back with it (its HTTP maxAge depends on it).
      assert.deepEqual(bare(await s.getResponse('ca1', '1', 'sha1')), bare(response('1', 'sha1', 10, { profile: 'short-lived' })));
      assert.deepEqual(bare(await s.getResponse('ca1', '1', 'sha256')), bare(response('1', 'sha256', 5)));
      assert.equal(await s.getResponse('ca1', '1', 'sha384'), undefined);
      assert.equal(await s.getResponse('ca2', '1', 'sha1'), undefined);
      // Among the latest responses only (minute 5's sha256 one, not minute 0's superseded sha1 one): 5 + 60.
      assert.deepEqual(await s.earliestNextUpdate('ca1'), at(65));
      assert.equal(await s.earliestNextUpdate('ca2'), undefined);
      await s.close();
    });

    it('counts the served responses past their CA/B Forum update deadline, leaving out expired certificates and other signers', async () => {
      const s = await make();
      await s.putCertificates([
        { ca: 'ca1', serial: 'p1', status: 'good', notAfter: at(100_000) },
        { ca: 'ca1', serial: 'p2', status: 'good', notAfter: at(10) },
        { ca: 'ca1', serial: 'p3', status: 'good' },
        { ca: 'ca1', serial: 'p4', status: 'good' },
      ]);
      const week = 7 * 1440;
      await put(s, [
        // Valid 1 hour (under 16): due at half the interval (60 min + 1 s) before nextUpdate, 29m59.5s after thisUpdate.
        response('p1', 'sha1', 0), response('p1', 'sha1', 20), response('p1', 'sha256', 0),
        response('p2', 'sha1', 0),
        response('p3', 'sha1', 0, { signer: 'S2' }),
        // Valid a week: due 4 days after thisUpdate.
        response('p4', 'sha1', 0, { nextUpdate: at(week) }),
      ]);
      const past = (minutes: number, signer = 'S1') => s.countPastUpdateTime('ca1', signer, at(minutes));
      assert.equal(await past(29), 0);
      assert.equal(await past(30), 1, 'p1 sha256 (p1 sha1 was replaced at minute 20; p2 expired at minute 10)');
      assert.equal(await past(50), 2);
      assert.equal(await past(50, 'S2'), 1);
      assert.equal(await past(4 * 1440), 2);
      assert.equal(await past(4 * 1440 + 1), 3);
      assert.equal(await s.countPastUpdateTime('ca2', 'S1', at(week)), 0);
      await s.close();
    });

    it('answers lookups made together (one batch on a store that batches) each with its own certificate\'s latest response', async () => {
      const s = await make();
      const serials = Array.from({ length: 40 }, (_, i) => (0x500 + i).toString(16));
      // Several responses per certificate (the latest wins), two hashes, every other certificate without a SHA-256 one.
      const latest = (serial: string, i: number) => response(serial, 'sha1', 10 + i, i % 3 === 0 ? { profile: 'short-lived' } : {});
      await s.putCertificates(serials.map((serial) => ({ ca: 'ca1', serial, status: 'good' as const })));
      await put(s, serials.flatMap((serial, i) => [response(serial, 'sha1', 0), latest(serial, i), ...(i % 2 === 0 ? [response(serial, 'sha256', 5)] : [])]));
      await s.revoke('ca1', serials[7]!, at(1), 'keyCompromise'); // its stored responses go with the revocation
      const asked: [string, string, HashName][] = [
        ...serials.flatMap((serial): [string, string, HashName][] => [['ca1', serial, 'sha1'], ['ca1', serial, 'sha256']]),
        ['ca1', serials[3]!, 'sha1'], ['ca2', serials[3]!, 'sha1'], ['ca1', 'ffff', 'sha1'], ['ca1', serials[3]!, 'sha384'],
      ];
      const [answers, records] = await Promise.all([
        Promise.all(asked.map(([ca, serial, hash]) => s.getResponse(ca, serial, hash))),
        Promise.all([...serials, 'ffff'].map((serial) => s.getCertificate('ca1', serial))),
      ]);
      asked.forEach(([ca, serial, hash], k) => {
        const i = serials.indexOf(serial);
        const none = ca !== 'ca1' || i < 0 || i === 7 || hash === 'sha384' || (hash === 'sha256' && i % 2 === 1);
        const expected = none ? undefined : hash === 'sha1' ? latest(serial, i) : response(serial, 'sha256', 5);
        assert.deepEqual(bare(answers[k]), bare(expected), `${ca} ${serial} ${hash}`);
      });
      records.forEach((r, i) => {
        if (i === serials.length) return assert.equal(r, undefined, 'unknown serial');
        assert.equal(r?.serial, serials[i]);
        assert.equal(r?.status, i === 7 ? 'revoked' : 'good');
      });
      await s.close();
    });

    it('stores nothing newer once a final response exists for the certificate and hash', async () => {
      const s = await make();
      const final = response('2', 'sha1', 0, { nextUpdate: new Date('9999-12-31T23:59:59Z'), final: true });
      assert.deepEqual(await put(s, [final]), { stored: 1, skippedFinal: 0, stale: 0 });
      assert.deepEqual(await put(s, [response('2', 'sha1', 30), response('2', 'sha256', 30)]), { stored: 1, skippedFinal: 1, stale: 0 });
      assert.deepEqual(bare(await s.getResponse('ca1', '2', 'sha1')), bare(final));
      await s.close();
    });

    it('a rotated signer replaces a final response of the retired one, and is then final itself', async () => {
      const s = await make();
      const final = response('2', 'sha1', 0, { nextUpdate: new Date('9999-12-31T23:59:59Z'), final: true });
      await put(s, [final]);
      const resigned = { ...final, producedAt: at(30), thisUpdate: at(30), signer: 'S2', der: Buffer.from('by S2') };
      assert.deepEqual(await put(s, [resigned]), { stored: 1, skippedFinal: 0, stale: 0 });
      assert.deepEqual(bare(await s.getResponse('ca1', '2', 'sha1')), bare(resigned));
      assert.equal((await s.getResponse('ca1', '2', 'sha1'))!.signer, 'S2');
      assert.deepEqual((await s.listResponses('ca1', undefined, 10)).map((r) => r.signer), ['S2'], 'the retired signer\'s response is gone');
      assert.deepEqual(await put(s, [response('2', 'sha1', 40, { signer: 'S2' })]), { stored: 0, skippedFinal: 1, stale: 0 });
      await s.close();
    });

    it('a batch is stored as its responses one after the other would be: a final one earlier in the batch stops a later one', async () => {
      const s = await make();
      const final = (serial: string, signer = 'S1') => response(serial, 'sha1', 0, { nextUpdate: new Date('9999-12-31T23:59:59Z'), final: true, signer });
      await put(s, [final('10'), final('11')]);
      // Distinct certificates (one statement on PostgreSQL): 10 blocked by its final, 11 re-signed by S2 (its
      // retired final goes), 12 new.
      const r = await put(s, [response('10', 'sha1', 5), response('11', 'sha1', 5, { signer: 'S2' }), response('12', 'sha1', 5)]);
      assert.deepEqual(r, { stored: 2, skippedFinal: 1, stale: 0 });
      assert.deepEqual((await s.listResponses('ca1', undefined, 10)).map((x) => `${x.serial}:${x.signer}:${x.final}`), ['10:S1:true', '11:S2:false', '12:S1:false']);
      // One certificate twice in a batch: the final one first keeps the later one out.
      assert.deepEqual(await put(s, [final('13'), response('13', 'sha1', 5)]), { stored: 1, skippedFinal: 1, stale: 0 });
      assert.equal((await s.getResponse('ca1', '13', 'sha1'))!.final, true);
      await s.close();
    });

    it('a status change deletes the stored responses that say otherwise; an unchanged re-import keeps them', async () => {
      const s = await make();
      await s.putCertificates([{ ca: 'ca1', serial: '3', status: 'good' }, { ca: 'ca1', serial: '4', status: 'good' }]);
      await put(s, [response('3', 'sha1', 0), response('3', 'sha256', 0), response('4', 'sha1', 0)]);
      await s.putCertificates([{ ca: 'ca1', serial: '4', status: 'good' }]);
      assert.ok(await s.getResponse('ca1', '4', 'sha1'), 'unchanged status keeps its response');
      await s.revoke('ca1', '3', at(5), 'keyCompromise');
      assert.equal(await s.getResponse('ca1', '3', 'sha1'), undefined);
      assert.equal(await s.getResponse('ca1', '3', 'sha256'), undefined);
      await s.putCertificates([{ ca: 'ca1', serial: '4', status: 'revoked', revokedAt: at(6), reason: 'superseded' }]);
      assert.equal(await s.getResponse('ca1', '4', 'sha1'), undefined, 'a revocation by import too');
      await s.close();
    });

    it('stores a response only if it was made from the certificate\'s current version (compare-and-set)', async () => {
      const s = await make();
      await s.putCertificates([{ ca: 'ca1', serial: '7', status: 'good' }, { ca: 'ca1', serial: '8', status: 'good' }]);
      // Made from the record as read now, then overtaken by a revocation before it is stored.
      const [made] = await stamp(s, [response('7', 'sha1', 0)]);
      const [other] = await stamp(s, [response('8', 'sha1', 0)]);
      await s.revoke('ca1', '7', at(1), 'keyCompromise');
      assert.deepEqual(await s.putResponses([made!, other!]), { stored: 1, skippedFinal: 0, stale: 1 });
      assert.equal(await s.getResponse('ca1', '7', 'sha1'), undefined);
      assert.ok(await s.getResponse('ca1', '8', 'sha1'));
      // A certificate the store does not know: nothing to have made it from.
      assert.deepEqual(await s.putResponses([{ ...response('9', 'sha1', 0), statusVersion: 0 }]), { stored: 0, skippedFinal: 0, stale: 1 });
      // Made from the revoked record: stored, and it comes back with its version.
      const [again] = await stamp(s, [response('7', 'sha1', 2)]);
      assert.deepEqual(await s.putResponses([again!]), { stored: 1, skippedFinal: 0, stale: 0 });
      assert.equal((await s.getResponse('ca1', '7', 'sha1'))!.statusVersion, (await s.getCertificate('ca1', '7'))!.version);
      await s.close();
    });

    it('finds certificates due: missing, older than the refresh point, or not final in the final window', async () => {
      const s = await make();
      const serials = ['a1', 'a2', 'a3', 'a4', 'a5'];
      await s.putCertificates(serials.map((serial) => ({ ca: 'ca1', serial, status: 'good' as const, notAfter: at(100_000) })));
      await s.putCertificates([{ ca: 'ca1', serial: 'a6', status: 'good', notAfter: at(-1) }, { ca: 'ca2', serial: 'b1', status: 'good' }]);
      await put(s, [
        response('a2', 'sha1', 0),
        response('a3', 'sha1', 50),
        response('a4', 'sha1', 0, { final: true, nextUpdate: new Date('9999-12-31T23:59:59Z') }),
        response('a5', 'sha256', 50),
      ]);
      // At minute 60: the CA's validity and each response's are 60 minutes, refreshed after half.
      const q: { ca: string; hash: HashName; signer: string; refreshBefore: Date; refreshAfter: number; refreshAt: Date; needFinal: boolean; notExpiredAt: Date | undefined } = {
        ca: 'ca1', hash: 'sha1', signer: 'S1', refreshBefore: at(30), refreshAfter: 0.5, refreshAt: at(60), needFinal: false, notExpiredAt: at(0),
      };
      const due = async (extra: Partial<typeof q> = {}, after = '', limit = 100) =>
        (await s.certificatesDue({ ...q, ...extra, after, limit })).map((c) => c.serial);
      assert.deepEqual(await due(), ['a1', 'a2', 'a5']);
      assert.equal(await s.countDue(q), 3);
      assert.deepEqual(await due({}, 'a1', 1), ['a2'], 'keyset pagination');
      assert.deepEqual(await due({ needFinal: true }), ['a1', 'a2', 'a3', 'a5']);
      assert.deepEqual(await due({ notExpiredAt: undefined }), ['a1', 'a2', 'a5', 'a6']);
      assert.deepEqual(await due({ hash: 'sha256' }), ['a1', 'a2', 'a3', 'a4']);
      assert.deepEqual(await due({ refreshBefore: EVERYTHING_DUE }), ['a1', 'a2', 'a3', 'a5'], 'presign --all: all but final');
      // A rotation: what the retired signer made, fresh and final alike, counts for nothing.
      assert.deepEqual(await due({ signer: 'S2' }), ['a1', 'a2', 'a3', 'a4', 'a5']);
      assert.equal(await s.countDue({ ...q, signer: 'S2' }), 5);
      // A response of shorter validity than the CA's (a certificate profile's 10 minutes, or a validity lengthened
      // since): due once half of its own validity has passed, though recent by the CA's.
      await put(s, [response('a1', 'sha1', 52, { nextUpdate: at(62) })]);
      assert.deepEqual(await due(), ['a1', 'a2', 'a5'], 'minute 60: past 57, its own refresh point');
      assert.deepEqual(await due({ refreshAt: at(56) }), ['a2', 'a5'], 'minute 56: not yet');
      assert.equal(await s.countDue(q), 3);
      await s.close();
    });

    it('lists one CA\'s responses, superseded ones too, keyset-paged by serial, hash and producedAt', async () => {
      const s = await make();
      const all = [
        response('a', 'sha256', 0), response('a', 'sha1', 10), response('a', 'sha1', 0), response('B', 'sha1', 5),
        response('a1', 'sha512', 1), response('a1', 'sha256', 1), { ...response('a', 'sha1', 3), ca: 'ca2' },
      ];
      await put(s, all);
      const expected = [
        response('B', 'sha1', 5), response('a', 'sha1', 0), response('a', 'sha1', 10), response('a', 'sha256', 0),
        response('a1', 'sha256', 1), response('a1', 'sha512', 1),
      ];
      assert.deepEqual((await s.listResponses('ca1', undefined, 100)).map(bare), expected.map(bare), 'bytewise serial order: B before a');
      const paged: StoredResponse[] = [];
      for (let page = await s.listResponses('ca1', undefined, 2); page.length > 0; ) {
        paged.push(...page);
        const last = page.at(-1)!;
        page = await s.listResponses('ca1', { serial: last.serial, hash: last.hash, producedAt: last.producedAt }, 2);
      }
      assert.deepEqual(paged.map(bare), expected.map(bare), 'pages of two resume after the last key, including within one certificate and hash');
      assert.deepEqual(await s.listResponses('ca3', undefined, 100), []);
      await s.close();
    });

    it('cleanup keeps only the latest producedAt per certificate and hash', async () => {
      const s = await make();
      await put(s, [
        response('c1', 'sha1', 0), response('c1', 'sha1', 10), response('c1', 'sha1', 20),
        response('c1', 'sha256', 0), response('c2', 'sha1', 5), response('c2', 'sha1', 6),
      ]);
      assert.equal(await s.deleteSuperseded(), 3);
      assert.equal(await s.deleteSuperseded(), 0);
      assert.deepEqual(bare(await s.getResponse('ca1', 'c1', 'sha1')), bare(response('c1', 'sha1', 20)));
      assert.deepEqual(bare(await s.getResponse('ca1', 'c1', 'sha256')), bare(response('c1', 'sha256', 0)));
      assert.deepEqual(bare(await s.getResponse('ca1', 'c2', 'sha1')), bare(response('c2', 'sha1', 6)));
      await s.close();
    });
  });
}

function describeChangeFeed(name: string, make: () => Promise<Store>, other?: (s: Store) => Promise<Store>): void {
  describe(`ChangeFeed contract: ${name}`, () => {
    it('records issuance, revocation and updates in order; nothing for unchanged records', async () => {
      const s = await make();
      const start = await s.lastChange();
      await s.putCertificates([{ ca: 'ca1', serial: '1', status: 'good' }, { ca: 'ca1', serial: '2', status: 'good' }]);
      await s.putCertificates([{ ca: 'ca1', serial: '1', status: 'good' }]);
      await s.revoke('ca1', '2', at(0), 'keyCompromise');
      await s.putCertificates([{ ca: 'ca1', serial: '1', status: 'good', profile: 'x' }]);
      const changes = await s.changesSince(start, 100);
      assert.deepEqual(changes.map((c) => [c.serial, c.kind]), [['1', 'issued'], ['2', 'issued'], ['2', 'revoked'], ['1', 'updated']]);
      assert.ok(changes.every((c, i) => i === 0 || c.seq > changes[i - 1]!.seq));
      assert.equal(await s.lastChange(), changes.at(-1)!.seq);
      assert.deepEqual((await s.changesSince(changes[1]!.seq, 1)).map((c) => c.serial), ['2']);
      await s.close();
    });

    if (other) {
      it('tells a second connection that another one wrote', async () => {
        const a = await make();
        const b = await other(a);
        let notified = 0;
        const stop = b.watch(() => notified++);
        b.mayHaveChanged();
        await a.revoke('ca1', '9', at(0), 'superseded');
        const deadline = Date.now() + 5000;
        while (notified === 0 && !b.mayHaveChanged() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        assert.ok(Date.now() < deadline, 'the second connection learned of the write within 5 s');
        assert.deepEqual((await b.changesSince(0, 10)).map((c) => c.serial), ['9']);
        stop();
        await b.close();
        await a.close();
      });
    }
  });
}

export function describeStatusStore(name: string, make: () => Promise<Store>): void {
  describe(`StatusStore contract: ${name}`, () => {
    const plain = (r: CertificateRecord | undefined) => {
      if (!r) return r;
      const { version: _, ...rest } = r;
      return rest;
    };
    const good = (serial: string, extra: Partial<CertificateRecord> = {}): CertificateRecord => ({
      ca: 'ca1', serial, status: 'good', notAfter: new Date('2030-01-01T00:00:00Z'), ...extra,
    });

    it('stores and returns records per CA and serial', async () => {
      const s = await make();
      const r = await s.putCertificates([good('1'), good('2', { profile: 'tls' }), { ...good('1'), ca: 'ca2' }]);
      assert.deepEqual(r, { inserted: 3, updated: 0, unchanged: 0, keptRevoked: 0 });
      assert.deepEqual(plain(await s.getCertificate('ca1', '2')), good('2', { profile: 'tls' }));
      assert.equal(await s.getCertificate('ca1', '3'), undefined);
      assert.equal(await s.getCertificate('ca3', '1'), undefined);
      await s.close();
    });

    it('lists one CA\'s certificates in bytewise serial order, keyset-paged', async () => {
      const s = await make();
      const serials = ['b', 'a1', 'A2', '10', 'f', '9'];
      await s.putCertificates([...serials.map((serial) => good(serial)), { ...good('a'), ca: 'ca2' }]);
      await s.revoke('ca1', 'c', new Date('2026-05-01T12:00:00Z'), 'superseded');
      const order = ['10', '9', 'A2', 'a1', 'b', 'c', 'f'];
      const all = await s.listCertificates('ca1', '', 100);
      assert.deepEqual(all.map((c) => c.serial), order);
      assert.deepEqual(plain(all[5]), { ca: 'ca1', serial: 'c', status: 'revoked', revokedAt: new Date('2026-05-01T12:00:00Z'), reason: 'superseded' });
      assert.deepEqual((await s.listCertificates('ca1', 'A2', 2)).map((c) => c.serial), ['a1', 'b']);
      assert.deepEqual(await s.listCertificates('ca1', 'f', 2), []);
      assert.deepEqual(await s.listCertificates('ca3', '', 2), []);
      await s.close();
    });

    it('records revocations, creating unknown serials', async () => {
      const s = await make();
      await s.putCertificates([good('10')]);
      const at = new Date('2026-05-01T12:00:00Z');
      const r10 = await s.revoke('ca1', '10', at, 'keyCompromise');
      assert.deepEqual({ ...r10, record: plain(r10.record) }, {
        created: false, outcome: 'updated', record: good('10', { status: 'revoked', revokedAt: at, reason: 'keyCompromise' }),
      });
      assert.deepEqual(plain(await s.getCertificate('ca1', '10')), good('10', { status: 'revoked', revokedAt: at, reason: 'keyCompromise' }));
      const r11 = await s.revoke('ca1', '11', at, 'superseded');
      assert.deepEqual([r11.created, r11.outcome], [true, 'inserted']);
      assert.equal((await s.getCertificate('ca1', '11'))!.status, 'revoked');
      await s.close();
    });

    it('never turns a revoked certificate good again, except certificateHold', async () => {
      const s = await make();
      const at = new Date('2026-05-01T12:00:00Z');
      await s.revoke('ca1', '20', at, 'keyCompromise');
      await s.revoke('ca1', '21', at, 'certificateHold');
      const r = await s.putCertificates([good('20'), good('21')]);
      assert.equal(r.keptRevoked, 1);
      assert.equal((await s.getCertificate('ca1', '20'))!.status, 'revoked');
      assert.equal((await s.getCertificate('ca1', '20'))!.reason, 'keyCompromise');
      assert.equal((await s.getCertificate('ca1', '21'))!.status, 'good', 'a hold is released');
      await s.close();
    });

    it('a final revocation is never put on hold or made good; only keyCompromise moves it; a hold is released or made final', async () => {
      const s = await make();
      const t = (h: number) => new Date(Date.UTC(2026, 4, 1, h));
      await s.putCertificates([good('50'), good('51'), good('52'), good('53')]);
      await s.revoke('ca1', '50', t(10), 'keyCompromise');
      assert.equal((await s.revoke('ca1', '50', t(11), 'certificateHold')).outcome, 'keptRevoked');
      assert.deepEqual(await s.putCertificates([good('50')]), { inserted: 0, updated: 0, unchanged: 1, keptRevoked: 1 });
      assert.deepEqual(await s.putCertificates([{ ca: 'ca1', serial: '50', status: 'good', releaseOnly: true }]), { inserted: 0, updated: 0, unchanged: 1, keptRevoked: 1 });
      assert.deepEqual(plain(await s.getCertificate('ca1', '50')), good('50', { status: 'revoked', revokedAt: t(10), reason: 'keyCompromise' }));
      // superseded, then keyCompromise later: the reason moves to keyCompromise, the earlier date stays.
      await s.revoke('ca1', '51', t(10), 'superseded');
      assert.equal((await s.revoke('ca1', '51', t(12), 'keyCompromise')).outcome, 'keptRevoked');
      assert.deepEqual(plain(await s.getCertificate('ca1', '51')), good('51', { status: 'revoked', revokedAt: t(10), reason: 'keyCompromise' }));
      // keyCompromise may be backdated; another reason is refused.
      assert.equal((await s.revoke('ca1', '51', t(8), 'keyCompromise')).outcome, 'updated');
      assert.equal((await s.revoke('ca1', '51', t(7), 'superseded')).outcome, 'keptRevoked');
      assert.deepEqual(plain(await s.getCertificate('ca1', '51')), good('51', { status: 'revoked', revokedAt: t(8), reason: 'keyCompromise' }));
      // A hold: released by removeFromCRL, then held again and made final.
      await s.revoke('ca1', '52', t(10), 'certificateHold');
      assert.deepEqual(await s.putCertificates([{ ca: 'ca1', serial: '52', status: 'good', releaseOnly: true }]), { inserted: 0, updated: 1, unchanged: 0, keptRevoked: 0 });
      assert.equal((await s.getCertificate('ca1', '52'))!.status, 'good');
      await s.revoke('ca1', '52', t(11), 'certificateHold');
      assert.equal((await s.revoke('ca1', '52', t(12), 'cessationOfOperation')).outcome, 'updated');
      assert.deepEqual(plain(await s.getCertificate('ca1', '52')), good('52', { status: 'revoked', revokedAt: t(12), reason: 'cessationOfOperation' }));
      // removeFromCRL of a serial never seen creates nothing; of a good one changes nothing.
      assert.deepEqual(await s.putCertificates([{ ca: 'ca1', serial: '59', status: 'good', releaseOnly: true }, { ca: 'ca1', serial: '53', status: 'good', releaseOnly: true }]), { inserted: 0, updated: 0, unchanged: 2, keptRevoked: 0 });
      assert.equal(await s.getCertificate('ca1', '59'), undefined);
      // removeFromCRL given as a revocation reason (revoke, an index R line) releases too; it is never stored as one.
      await s.revoke('ca1', '53', t(13), 'certificateHold');
      assert.equal((await s.revoke('ca1', '53', t(14), 'removeFromCRL')).record?.status, 'good');
      assert.equal((await s.revoke('ca1', '50', t(14), 'removeFromCRL')).outcome, 'keptRevoked');
      assert.equal((await s.revoke('ca1', '58', t(14), 'removeFromCRL')).outcome, 'unchanged');
      assert.equal(await s.getCertificate('ca1', '58'), undefined);
      await s.close();
    });

    it('each write moves the certificate\'s version to the seq of its change record', async () => {
      const s = await make();
      await s.putCertificates([good('60'), good('61')]);
      const v1 = (await s.getCertificate('ca1', '60'))!.version!;
      assert.ok(v1 > 0);
      assert.ok((await s.getCertificate('ca1', '61'))!.version! > v1);
      await s.putCertificates([good('60')]);
      assert.equal((await s.getCertificate('ca1', '60'))!.version, v1, 'an unchanged write records no change');
      await s.revoke('ca1', '60', new Date('2026-05-01T12:00:00Z'), 'superseded');
      const v2 = (await s.getCertificate('ca1', '60'))!.version!;
      assert.equal(v2, await s.lastChange());
      await s.close();
    });

    it('counts unchanged and updated records on re-import', async () => {
      const s = await make();
      await s.putCertificates([good('30'), good('31')]);
      const r = await s.putCertificates([good('30'), good('31', { notAfter: new Date('2031-01-01T00:00:00Z') })]);
      assert.deepEqual(r, { inserted: 0, updated: 1, unchanged: 1, keptRevoked: 0 });
      await s.close();
    });

    it('writes nothing when one record of a batch fails', async () => {
      const s = await make();
      const bad = { ...good('41'), status: 'bogus' } as unknown as CertificateRecord;
      await assert.rejects(s.putCertificates([good('40'), bad]));
      assert.equal(await s.getCertificate('ca1', '40'), undefined);
      await s.ping();
      await s.close();
    });
  });
}
