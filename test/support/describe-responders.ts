// The ResponderStore contract (heartbeat rows), run on SQLite and PostgreSQL with the same cases: nothing here
// depends on time passing (the ageing itself is tested per store, with a fake clock or the server's).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { ResponderBeat } from '../../src/store/responder-store';
import type { Store } from '../../src/store/response-store';

export const beatOf = (id: string, over: Partial<ResponderBeat> = {}): ResponderBeat => ({
  id,
  host: 'node-a',
  pid: 4242,
  worker: 0,
  startedAt: new Date('2026-06-01T00:00:00.123Z'),
  appliedSeq: 10,
  ready: true,
  ...over,
});

export function describeResponderStore(name: string, make: () => Promise<Store>): void {
  describe(`ResponderStore contract: ${name}`, () => {
    it('records a heartbeat, replaces it with the next, lists responders in id order', async () => {
      const s = await make();
      assert.deepEqual(await s.responders(), []);
      await s.beat(beatOf('node-b/7/aaaaaa#1', { host: 'node-b', pid: 7, worker: 1, appliedSeq: 3, ready: false }));
      await s.beat(beatOf('node-a/4242/bbbbbb'));
      await s.beat(beatOf('node-a/4242/bbbbbb', { appliedSeq: 2 ** 40, ready: false }));
      const rows = await s.responders();
      assert.deepEqual(
        rows.map(({ heartbeatAt: _, ageMs: __, ...r }) => r),
        [beatOf('node-a/4242/bbbbbb', { appliedSeq: 2 ** 40, ready: false }), beatOf('node-b/7/aaaaaa#1', { host: 'node-b', pid: 7, worker: 1, appliedSeq: 3, ready: false })],
      );
      for (const r of rows) {
        assert.ok(r.heartbeatAt instanceof Date);
        assert.ok(r.ageMs >= 0 && r.ageMs < 5000, `age ${r.ageMs}`);
      }
      await s.close();
    });

    it('forgets one responder; prunes none heard of within the hour; no leases without a lease table', async () => {
      const s = await make();
      await s.beat(beatOf('a'));
      await s.beat(beatOf('b'));
      await s.forgetResponder('a');
      await s.forgetResponder('no-such-responder');
      assert.deepEqual((await s.responders()).map((r) => r.id), ['b']);
      assert.equal(await s.pruneResponders(3_600_000), 0);
      assert.deepEqual((await s.responders()).map((r) => r.id), ['b']);
      assert.deepEqual(await s.listLeases(), []);
      await s.close();
    });
  });
}
