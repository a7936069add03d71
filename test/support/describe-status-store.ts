// Contract every StatusStore must honour; run on SQLite now and on PostgreSQL when it lands.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CertificateRecord, StatusStore } from '../../src/store/status-store';

export function describeStatusStore(name: string, make: () => Promise<StatusStore>): void {
  describe(`StatusStore contract: ${name}`, () => {
    const good = (serial: string, extra: Partial<CertificateRecord> = {}): CertificateRecord => ({
      ca: 'ca1', serial, status: 'good', notAfter: new Date('2030-01-01T00:00:00Z'), ...extra,
    });

    it('stores and returns records per CA and serial', async () => {
      const s = await make();
      const r = await s.putCertificates([good('1'), good('2', { profile: 'tls' }), { ...good('1'), ca: 'ca2' }]);
      assert.deepEqual(r, { inserted: 3, updated: 0, unchanged: 0, keptRevoked: 0 });
      assert.deepEqual(await s.getCertificate('ca1', '2'), good('2', { profile: 'tls' }));
      assert.equal(await s.getCertificate('ca1', '3'), undefined);
      assert.equal(await s.getCertificate('ca3', '1'), undefined);
      await s.close();
    });

    it('records revocations, creating unknown serials', async () => {
      const s = await make();
      await s.putCertificates([good('10')]);
      const at = new Date('2026-05-01T12:00:00Z');
      assert.deepEqual(await s.revoke('ca1', '10', at, 'keyCompromise'), { created: false });
      assert.deepEqual(await s.getCertificate('ca1', '10'), good('10', { status: 'revoked', revokedAt: at, reason: 'keyCompromise' }));
      assert.deepEqual(await s.revoke('ca1', '11', at, 'superseded'), { created: true });
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
