// The lease contract every Store backend honours (claims, renewals, takeover, release, fenced writes): run on SQLite
// and on PostgreSQL with the same cases, two connections to one store sharing one fake clock.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FakeClock } from '../../src/clock';
import type { Lease, LeaseFence } from '../../src/store/lease-store';
import type { Store } from '../../src/store/response-store';
import { response, stamp } from './describe-store';

/** `make` opens an empty store on `clock`; `other` a second connection to the same one, on the same clock. */
export function describeLeaseStore(name: string, make: (clock: FakeClock) => Promise<Store>, other: (s: Store, clock: FakeClock) => Promise<Store>): void {
  const TTL = 10_000;
  const fence = (l: Lease): LeaseFence => ({ name: l.name, holder: l.holder, epoch: l.epoch });
  const pair = async () => {
    const clock = new FakeClock('2026-06-01T00:00:00Z');
    const a = await make(clock);
    return { clock, a, b: await other(a, clock) };
  };

  describe(`LeaseStore contract: ${name}`, () => {
    it('a free lease is taken (epoch 1); another claimant gets the holder\'s lease back until it expires', async () => {
      const { clock, a, b } = await pair();
      assert.equal(await a.readLease('services'), undefined);
      const t0 = clock.now();
      const held = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      assert.deepEqual(held, { name: 'services', holder: 'A', epoch: 1, acquiredAt: t0, expiresAt: new Date(t0.getTime() + TTL) });
      assert.deepEqual(await b.readLease('services'), held);
      clock.advance(TTL - 1);
      assert.deepEqual(await b.acquireLease({ name: 'services', holder: 'B', ttlMs: TTL }), held, 'still A\'s, 1 ms before expiry');
      assert.deepEqual(await b.acquireLease({ name: 'other', holder: 'B', ttlMs: TTL }), { ...held, name: 'other', holder: 'B', acquiredAt: clock.now(), expiresAt: new Date(clock.now().getTime() + TTL) }, 'leases are per name');
      await a.close();
      await b.close();
    });

    it('a renewal keeps the epoch and moves the expiry; after expiry another holder takes over with the next epoch', async () => {
      const { clock, a, b } = await pair();
      const first = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      clock.advance(3_000);
      const renewed = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL, heldEpoch: first.epoch });
      assert.deepEqual(renewed, { ...first, expiresAt: new Date(clock.now().getTime() + TTL) });
      clock.advance(TTL - 1);
      assert.equal((await b.acquireLease({ name: 'services', holder: 'B', ttlMs: TTL })).holder, 'A', 'the renewal counts');
      clock.advance(1);
      const taken = await b.acquireLease({ name: 'services', holder: 'B', ttlMs: TTL });
      assert.deepEqual(taken, { name: 'services', holder: 'B', epoch: 2, acquiredAt: clock.now(), expiresAt: new Date(clock.now().getTime() + TTL) });
      // The old holder's renewal of its ended hold is refused: it learns who holds the lease now.
      assert.deepEqual(await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL, heldEpoch: 1 }), taken);
      await a.close();
      await b.close();
    });

    it('the holder claiming without its epoch (its hold ended locally) begins a new hold: the next epoch', async () => {
      const { clock, a, b } = await pair();
      const first = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      clock.advance(1_000);
      const again = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      assert.equal(again.epoch, first.epoch + 1);
      assert.deepEqual(again.acquiredAt, clock.now());
      // A renewal naming an older epoch is not one either.
      assert.equal((await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL, heldEpoch: first.epoch })).epoch, first.epoch + 2);
      await a.close();
      await b.close();
    });

    it('a release ends the hold at once: the next claimant takes over without waiting for expiry', async () => {
      const { clock, a, b } = await pair();
      const held = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      clock.advance(1_000);
      assert.equal(await b.releaseLease({ ...fence(held), holder: 'B' }), false, 'not B\'s to release');
      assert.equal(await a.releaseLease({ ...fence(held), epoch: 7 }), false, 'not that hold');
      assert.equal(await a.releaseLease(fence(held)), true);
      assert.deepEqual((await b.readLease('services'))!.expiresAt, clock.now());
      assert.equal(await a.releaseLease(fence(held)), false, 'released once');
      const taken = await b.acquireLease({ name: 'services', holder: 'B', ttlMs: TTL });
      assert.deepEqual({ holder: taken.holder, epoch: taken.epoch }, { holder: 'B', epoch: 2 });
      await a.close();
      await b.close();
    });

    it('a fenced batch is stored only while its hold is the lease\'s: a stale holder\'s batch counts as stale, nothing stored', async () => {
      const { clock, a, b } = await pair();
      const held = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      const batch = await stamp(a, [response('f1', 'sha1', 0), response('f2', 'sha1', 0)]);
      assert.deepEqual(await a.putResponses(batch.slice(0, 1), fence(held)), { stored: 1, skippedFinal: 0, stale: 0 }, 'the holder stores');
      // A pauses (a long GC, a partition) past its lease; B takes over.
      clock.advance(TTL);
      const taken = await b.acquireLease({ name: 'services', holder: 'B', ttlMs: TTL });
      assert.equal(taken.epoch, 2);
      const late = await stamp(a, [response('f1', 'sha1', 1), response('f2', 'sha1', 1)]);
      assert.deepEqual(await a.putResponses(late, fence(held)), { stored: 0, skippedFinal: 0, stale: 2 });
      assert.equal((await b.getResponse('ca1', 'f2', 'sha1')), undefined);
      assert.equal((await b.getResponse('ca1', 'f1', 'sha1'))!.producedAt.getTime(), batch[0]!.producedAt.getTime(), 'the earlier response stays the latest');
      // The new holder's batch goes in; a store-on-demand write (no fence) is never refused.
      assert.deepEqual(await b.putResponses(late.slice(1), fence(taken)), { stored: 1, skippedFinal: 0, stale: 0 });
      assert.deepEqual(await a.putResponses(late.slice(0, 1)), { stored: 1, skippedFinal: 0, stale: 0 });
      await a.close();
      await b.close();
    });

    it('a fence no longer passes once its hold expired or was released, even with nobody else holding', async () => {
      const { clock, a, b } = await pair();
      const held = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      const [r] = await stamp(a, [response('g1', 'sha1', 0)]);
      clock.advance(TTL);
      assert.deepEqual(await a.putResponses([r!], fence(held)), { stored: 0, skippedFinal: 0, stale: 1 }, 'expired');
      const again = await a.acquireLease({ name: 'services', holder: 'A', ttlMs: TTL });
      assert.deepEqual(await a.putResponses([r!], fence(held)), { stored: 0, skippedFinal: 0, stale: 1 }, 'an ended hold of the same holder');
      assert.equal(await a.releaseLease(fence(again)), true);
      assert.deepEqual(await a.putResponses([r!], fence(again)), { stored: 0, skippedFinal: 0, stale: 1 }, 'released');
      assert.deepEqual(await a.putResponses([r!], { name: 'never-held', holder: 'A', epoch: 1 }), { stored: 0, skippedFinal: 0, stale: 1 }, 'no such lease');
      await a.close();
      await b.close();
    });
  });
}
