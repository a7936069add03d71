// Lookups that arrive together go out as one query, and never in a query sent before they arrived: driven by hand,
// with a backend that reads its snapshot when a query is sent and answers when the test says so.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LookupBatcher } from '../src/store/lookup-batcher';

/** A database whose statements read the rows as they are when sent (READ COMMITTED) and answer when released. */
class HeldDatabase {
  readonly rows = new Map<string, string>();
  readonly sent: { keys: string[]; release(): void; fail(e: Error): void }[] = [];

  query = (keys: string[]): Promise<(string | undefined)[]> => {
    const snapshot = keys.map((k) => this.rows.get(k));
    return new Promise((resolve, reject) => this.sent.push({ keys, release: () => resolve(snapshot), fail: reject }));
  };
}

/** The batcher with its turn ends in the test's hands: `turnEnds()` runs what setImmediate would. */
function batcher(db: HeldDatabase, maxInFlight: number, maxBatch = 100) {
  const flushes: (() => void)[] = [];
  const b = new LookupBatcher<string, string | undefined>(db.query, (k) => k, { maxInFlight, maxBatch, schedule: (f) => flushes.push(f) });
  return { b, turnEnds: () => flushes.splice(0).forEach((f) => f()) };
}

const settled = () => new Promise<void>((r) => setImmediate(r));

describe('LookupBatcher', () => {
  it('answers the lookups of one turn with one query, each with its own key\'s value, a key asked twice once', async () => {
    const db = new HeldDatabase();
    db.rows.set('a', 'A').set('b', 'B');
    const { b, turnEnds } = batcher(db, 2);
    const answers = Promise.all(['a', 'b', 'a', 'missing'].map((k) => b.lookup(k)));
    assert.equal(db.sent.length, 0, 'nothing goes out before the turn ends');
    turnEnds();
    assert.deepEqual(db.sent.map((q) => q.keys), [['a', 'b', 'missing']]);
    db.sent[0]!.release();
    assert.deepEqual(await answers, ['A', 'B', 'A', undefined]);
    assert.deepEqual(b.stats, { queries: 1, keys: 3 });
  });

  it('lookups arriving while the queries allowed are in flight go out together when one returns', async () => {
    const db = new HeldDatabase();
    for (const k of ['a', 'b', 'c', 'd', 'e']) db.rows.set(k, k.toUpperCase());
    const { b, turnEnds } = batcher(db, 1);
    const first = b.lookup('a');
    turnEnds();
    const later = ['b', 'c', 'd'].map((k) => b.lookup(k));
    turnEnds(); // a turn ends with one query in flight: they wait
    assert.equal(db.sent.length, 1);
    assert.equal(b.waiting, 3);
    const last = b.lookup('e');
    db.sent[0]!.release();
    assert.equal(await first, 'A');
    await settled();
    assert.deepEqual(db.sent.map((q) => q.keys), [['a'], ['b', 'c', 'd', 'e']], 'sent once the first returned, as one query');
    db.sent[1]!.release();
    assert.deepEqual(await Promise.all([...later, last]), ['B', 'C', 'D', 'E']);
  });

  it('never more distinct keys per query than maxBatch, never more queries in flight than maxInFlight', async () => {
    const db = new HeldDatabase();
    const { b, turnEnds } = batcher(db, 2, 3);
    const all = Array.from({ length: 10 }, (_, i) => b.lookup(String(i)));
    turnEnds();
    assert.deepEqual(db.sent.map((q) => q.keys), [['0', '1', '2'], ['3', '4', '5']]);
    db.sent[1]!.release();
    await settled();
    assert.deepEqual(db.sent.map((q) => q.keys.length), [3, 3, 3]);
    db.sent[0]!.release();
    await settled();
    db.sent[2]!.release();
    await settled();
    assert.deepEqual(db.sent.map((q) => q.keys), [['0', '1', '2'], ['3', '4', '5'], ['6', '7', '8'], ['9']]);
    db.sent[3]!.release();
    assert.equal((await Promise.all(all)).length, 10);
  });

  // The adversary: a status write commits while a query for the same key is in flight. A lookup that arrives after
  // the commit must see it, as a query of its own would: it may not share the query sent before it arrived.
  for (const maxInFlight of [1, 2]) {
    it(`a lookup arriving after a write committed never gets the answer of a query sent before it (maxInFlight ${maxInFlight})`, async () => {
      const db = new HeldDatabase();
      db.rows.set('cert', 'good');
      const { b, turnEnds } = batcher(db, maxInFlight);
      const before = b.lookup('cert');
      turnEnds(); // query 1 sent: its snapshot says good
      db.rows.set('cert', 'revoked'); // the revocation commits
      const after = b.lookup('cert');
      turnEnds();
      db.sent[0]!.release();
      assert.equal(await before, 'good', 'asked before the revocation: the old answer is allowed');
      await settled();
      assert.equal(db.sent.length, 2, 'the later lookup went out in a query of its own');
      db.sent[1]!.release();
      assert.equal(await after, 'revoked');
    });
  }

  it('a failed query fails each of its lookups with the same error, and only those', async () => {
    const db = new HeldDatabase();
    db.rows.set('a', 'A').set('c', 'C');
    const { b, turnEnds } = batcher(db, 1);
    const failing = Promise.allSettled([b.lookup('a'), b.lookup('b'), b.lookup('a')]);
    turnEnds();
    const next = b.lookup('c');
    const boom = new Error('connection terminated');
    db.sent[0]!.fail(boom);
    for (const o of await failing) assert.ok(o.status === 'rejected' && o.reason === boom);
    await settled();
    db.sent[1]!.release();
    assert.equal(await next, 'C', 'the next query is sent and answers');
  });

  it('a query that throws before it is sent fails its lookups, and the batcher goes on', async () => {
    let calls = 0;
    const flushes: (() => void)[] = [];
    const b = new LookupBatcher<string, string>((keys) => {
      if (calls++ === 0) throw new Error('pool closed');
      return Promise.resolve(keys.map((k) => k.toUpperCase()));
    }, (k) => k, { maxInFlight: 1, maxBatch: 10, schedule: (f) => flushes.push(f) });
    const first = b.lookup('a');
    flushes.splice(0).forEach((f) => f());
    await assert.rejects(first, /pool closed/);
    const second = b.lookup('b');
    flushes.splice(0).forEach((f) => f());
    assert.equal(await second, 'B');
  });
});
