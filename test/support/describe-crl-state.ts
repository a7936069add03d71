// The CRL state contract (last full and delta CRL per CA, order checks, one transaction): run on SQLite and PostgreSQL.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppliedCrl, StaleCrlError } from '../../src/store/crl-state';
import type { Store } from '../../src/store/response-store';

const day = 86_400_000;
const T0 = Date.parse('2026-06-01T00:00:00Z');

function full(n: bigint, extra: Partial<AppliedCrl> = {}): AppliedCrl {
  return {
    ca: 'ca1', kind: 'full', crlNumber: n, thisUpdate: new Date(T0 + Number(n) * day), nextUpdate: new Date(T0 + (Number(n) + 1) * day),
    freshestCrlUrls: ['http://crl.example/delta.crl', 'http://crl.example/delta2.crl'], ...extra,
  };
}
function delta(n: bigint, base: bigint): AppliedCrl {
  return { ...full(n), kind: 'delta', baseCrlNumber: base, freshestCrlUrls: [] };
}

export function describeCrlState(name: string, make: () => Promise<Store>): void {
  describe(`CrlStateStore contract: ${name}`, () => {
    it('remembers the last full and delta CRL per CA, numbers beyond 64 bits intact', async () => {
      const s = await make();
      assert.deepEqual(await s.lastCrls('ca1'), {});
      const big = 2n ** 150n + 7n;
      const r = await s.applyCrl(full(big, { thisUpdate: new Date(T0), nextUpdate: new Date(T0 + day) }), [
        { ca: 'ca1', serial: 'a1', status: 'revoked', revokedAt: new Date(T0), reason: 'keyCompromise' },
      ]);
      assert.deepEqual(r, { inserted: 1, updated: 0, unchanged: 0, keptRevoked: 0 });
      const last = await s.lastCrls('ca1');
      assert.equal(last.full?.crlNumber, big);
      assert.deepEqual(last.full?.freshestCrlUrls, ['http://crl.example/delta.crl', 'http://crl.example/delta2.crl']);
      assert.deepEqual(last.full?.nextUpdate, new Date(T0 + day));
      assert.equal(last.delta, undefined);
      assert.deepEqual(await s.lastCrls('ca2'), {}, 'per CA');
      assert.equal((await s.getCertificate('ca1', 'a1'))?.reason, 'keyCompromise');
      await s.close();
    });

    it('applies a delta on its base; a removeFromCRL ("good") releases a hold only', async () => {
      const s = await make();
      const at = new Date(T0);
      await s.applyCrl(full(5n), [
        { ca: 'ca1', serial: 'b1', status: 'revoked', revokedAt: at, reason: 'certificateHold' },
        { ca: 'ca1', serial: 'b2', status: 'revoked', revokedAt: at, reason: 'keyCompromise' },
      ]);
      const r = await s.applyCrl(delta(7n, 5n), [
        { ca: 'ca1', serial: 'b1', status: 'good' },
        { ca: 'ca1', serial: 'b2', status: 'good' },
        { ca: 'ca1', serial: 'b3', status: 'revoked', revokedAt: at, reason: 'superseded' },
      ]);
      assert.deepEqual(r, { inserted: 1, updated: 1, unchanged: 1, keptRevoked: 1 });
      assert.equal((await s.getCertificate('ca1', 'b1'))?.status, 'good');
      assert.equal((await s.getCertificate('ca1', 'b2'))?.status, 'revoked');
      const last = await s.lastCrls('ca1');
      assert.equal(last.full?.crlNumber, 5n);
      assert.equal(last.delta?.crlNumber, 7n);
      assert.equal(last.delta?.baseCrlNumber, 5n);
      // The full CRL 5 again would put b1 back on hold: it is older than the delta CRL 7 now.
      await assert.rejects(s.applyCrl(full(5n), []), /full CRL number 5 .* is older than the delta CRL number 7/);
      await s.applyCrl(full(7n), []);
      await s.close();
    });

    it('refuses an older CRL, a delta without its base, and changes nothing then', async () => {
      const s = await make();
      await s.applyCrl(full(10n), []);
      const revoke = [{ ca: 'ca1', serial: 'c1', status: 'revoked' as const, revokedAt: new Date(T0), reason: 'keyCompromise' as const }];
      await assert.rejects(s.applyCrl(full(9n), revoke), (e: Error) => e instanceof StaleCrlError && /full CRL number 9 .* is older than the full CRL number 10/.test(e.message));
      await assert.rejects(s.applyCrl(delta(12n, 11n), revoke), /builds on CRL 11, newer than the full CRL number 10 .*apply that full CRL first/);
      await assert.rejects(s.applyCrl(delta(9n, 8n), revoke), /delta CRL number 9 .* is older than the full CRL number 10/);
      await assert.rejects(s.applyCrl({ ...delta(3n, 1n), ca: 'ca2' }, revoke), /no full CRL was applied for CA "ca2"/);
      assert.equal(await s.getCertificate('ca1', 'c1'), undefined);
      assert.equal((await s.lastCrls('ca1')).full?.crlNumber, 10n);
      assert.equal((await s.lastCrls('ca1')).delta, undefined);
      // The same CRL again is an idempotent re-import.
      assert.deepEqual(await s.applyCrl(full(10n), []), { inserted: 0, updated: 0, unchanged: 0, keptRevoked: 0 });
      await s.close();
    });

    it('writes neither records nor CRL state when a record fails', async () => {
      const s = await make();
      const bad = { ca: 'ca1', serial: 'd2', status: 'bogus' } as never;
      await assert.rejects(s.applyCrl(full(3n), [{ ca: 'ca1', serial: 'd1', status: 'revoked', revokedAt: new Date(T0) }, bad]));
      assert.equal(await s.getCertificate('ca1', 'd1'), undefined);
      assert.deepEqual(await s.lastCrls('ca1'), {});
      await s.close();
    });
  });
}
