// A responder's heartbeat row on a real SQLite store with a fake clock: written at once, every cluster.heartbeat and,
// debounced, after the follower applied changes; held past the liveness window (and the follower made to prove its
// feed anew once a write succeeds again); removed at a clean stop; old rows pruned. And what the change follower
// does for it: apply() waits for a drain that began after the call, held() sends memory answers through a new drain.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { FakeClock } from '../src/clock';
import { Heartbeat, HeartbeatFollower, livenessWindowMs, PRUNE_AFTER_MS } from '../src/cluster/heartbeat';
import { ChangeFollower } from '../src/source/change-follower';
import type { ResponseProducer } from '../src/source/response-producer';
import type { ResponderBeat, ResponderStore } from '../src/store/responder-store';
import type { Store } from '../src/store/response-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { tempDir } from './support/temp';

const EVERY = 1000;
const LIVENESS = livenessWindowMs(EVERY, 2000);
const quiet = { warn: () => undefined, info: () => undefined };
/** Lets the store's promises and the heartbeat's continuations run. */
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

/** The SQLite store, its beat() counted and made to fail on demand. */
function countingStore(inner: SqliteStore) {
  const written: ResponderBeat[] = [];
  let failing = false;
  const store: Pick<ResponderStore, 'beat' | 'forgetResponder' | 'pruneResponders'> = {
    beat: async (b) => {
      if (failing) throw new Error('the store is away (test)');
      written.push(b);
      await inner.beat(b);
    },
    forgetResponder: (id) => inner.forgetResponder(id),
    pruneResponders: (ms) => inner.pruneResponders(ms),
  };
  return { store, written, fail: (on: boolean) => (failing = on) };
}

class FakeFollower implements HeartbeatFollower {
  seq = 7;
  distrusted = 0;
  distrust(): void {
    this.distrusted++;
  }
}

describe('responder heartbeat', () => {
  let clock: FakeClock;
  let sqlite: SqliteStore;
  let counted: ReturnType<typeof countingStore>;
  let follower: FakeFollower;
  let hb: Heartbeat;
  let ready = true;

  beforeEach(async () => {
    clock = new FakeClock('2026-05-01T00:00:00Z');
    sqlite = new SqliteStore(join(tempDir('heartbeat'), 'store.sqlite'), clock);
    counted = countingStore(sqlite);
    follower = new FakeFollower();
    ready = true;
    hb = new Heartbeat({
      store: counted.store,
      clock,
      identity: { id: 'node-a/42/abcdef#2', host: 'node-a', pid: 42, worker: 2 },
      everyMs: EVERY,
      livenessMs: LIVENESS,
      follower: () => follower,
      ready: async () => ready,
      log: quiet,
    });
  });
  afterEach(async () => {
    await hb.stop();
    await sqlite.close();
  });

  it('the liveness window is two heartbeats plus the staleness bound', () => {
    assert.equal(livenessWindowMs(1000, 2000), 4000);
    assert.equal(livenessWindowMs(5000, 250), 10_250);
  });

  it('writes its row at start, then every heartbeat, with the applied seq and readiness', async () => {
    await hb.start();
    let [row] = await sqlite.responders();
    assert.deepEqual(
      { ...row, startedAt: row!.startedAt.toISOString(), heartbeatAt: row!.heartbeatAt.toISOString() },
      { id: 'node-a/42/abcdef#2', host: 'node-a', pid: 42, worker: 2, startedAt: '2026-05-01T00:00:00.000Z', heartbeatAt: '2026-05-01T00:00:00.000Z', ageMs: 0, appliedSeq: 7, ready: true },
    );
    follower.seq = 9;
    ready = false;
    clock.advance(EVERY - 1);
    await settle();
    assert.equal(counted.written.length, 1, 'nothing before the interval');
    clock.advance(1);
    await settle();
    [row] = await sqlite.responders();
    assert.equal(row!.appliedSeq, 9);
    assert.equal(row!.heartbeatAt.toISOString(), '2026-05-01T00:00:01.000Z');
    // Readiness is asked at each heartbeat and recorded by the next write (a write never waits for it).
    clock.advance(EVERY);
    await settle();
    [row] = await sqlite.responders();
    assert.equal(row!.ready, false);
    assert.equal(counted.written.length, 3);
  });

  it('records a position the follower applied within 10 ms, one write for a burst', async () => {
    await hb.start();
    for (let seq = 8; seq <= 20; seq++) {
      follower.seq = seq;
      hb.applied();
    }
    clock.advance(9);
    await settle();
    assert.equal(counted.written.length, 1, 'not yet');
    clock.advance(1);
    await settle();
    assert.equal(counted.written.length, 2, 'the first row and one for the burst');
    assert.equal((await sqlite.responders())[0]!.appliedSeq, 20);
    // Changes that keep coming: a write at most every 50 ms.
    for (let t = 0; t < 1000; t++) {
      follower.seq++;
      hb.applied();
      clock.advance(1);
      if (t % 5 === 0) await settle();
    }
    await settle();
    const during = counted.written.length - 2;
    assert.ok(during >= 18 && during <= 21, `${during} writes in one second of changes`);
  });

  it('is held once no write succeeded for the liveness window, and makes the follower prove its feed anew when one does', async () => {
    await hb.start();
    assert.equal(hb.held(), false);
    assert.equal(follower.distrusted, 1, 'before the first row nothing vouched for it either');
    counted.fail(true);
    clock.advance(LIVENESS - 100);
    await settle();
    assert.equal(hb.held(), false, 'not before the window (less its margin) is over');
    clock.advance(1);
    assert.equal(hb.held(), true);
    clock.advance(EVERY);
    await settle();
    assert.equal(follower.distrusted, 1, 'a failed write changes nothing');
    counted.fail(false);
    clock.advance(EVERY);
    await settle();
    assert.equal(hb.held(), false);
    assert.equal(follower.distrusted, 2);
    clock.advance(EVERY);
    await settle();
    assert.equal(follower.distrusted, 2, 'only after a held spell');
  });

  it('a clean stop removes its row and writes no more', async () => {
    await hb.start();
    assert.equal((await sqlite.responders()).length, 1);
    await hb.stop();
    assert.deepEqual(await sqlite.responders(), []);
    hb.applied();
    clock.advance(10 * EVERY);
    await settle();
    assert.deepEqual(await sqlite.responders(), []);
  });

  it('a stop does not wait for a store that does not answer for more than 2 s', async () => {
    const warned: string[] = [];
    const stuck = new Heartbeat({
      store: { beat: async () => undefined, pruneResponders: async () => 0, forgetResponder: () => new Promise<void>(() => undefined) },
      clock,
      identity: { id: 'stuck', host: 'h', pid: 1, worker: 0 },
      everyMs: EVERY,
      livenessMs: LIVENESS,
      follower: () => follower,
      ready: async () => true,
      log: { info: () => undefined, warn: ((_: object, m: string) => void warned.push(m)) as never },
    });
    await stuck.start();
    let stopped = false;
    const stopping = stuck.stop().then(() => (stopped = true));
    clock.advance(1999);
    await settle();
    assert.equal(stopped, false);
    clock.advance(1);
    await stopping;
    assert.deepEqual(warned, ["could not remove this responder's heartbeat row"]);
  });

  it('prunes rows of responders not heard of for an hour', async () => {
    await sqlite.beat({ id: 'gone', host: 'node-b', pid: 1, worker: 0, startedAt: clock.now(), appliedSeq: 1, ready: true });
    clock.advance(PRUNE_AFTER_MS - 60_000);
    await sqlite.beat({ id: 'recent', host: 'node-c', pid: 2, worker: 0, startedAt: clock.now(), appliedSeq: 1, ready: true });
    await hb.start();
    for (let t = 0; t < 60_000 + EVERY; t += EVERY) {
      clock.advance(EVERY);
      await settle();
    }
    assert.deepEqual((await sqlite.responders()).map((r) => r.id), ['node-a/42/abcdef#2', 'recent']);
  });
});

describe('change follower for the heartbeat', () => {
  let clock: FakeClock;
  let responder: SqliteStore;
  let writer: SqliteStore;
  let follower: ChangeFollower;
  let held = false;
  const advanced: number[] = [];

  /** The store the follower reads, whose lastChange() can be held after it read the head. */
  let gate: Promise<void> | undefined;
  let open: () => void = () => undefined;
  const holdHead = () => (gate = new Promise<void>((r) => (open = r)));

  beforeEach(async () => {
    clock = new FakeClock('2026-05-01T00:00:00Z');
    const file = join(tempDir('follower'), 'store.sqlite');
    responder = new SqliteStore(file, clock);
    writer = new SqliteStore(file, clock);
    const store = new Proxy(responder, {
      get(target, prop, receiver) {
        if (prop === 'lastChange') {
          return async () => {
            const head = await target.lastChange();
            if (gate) await gate;
            return head;
          };
        }
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    }) as Store;
    held = false;
    advanced.length = 0;
    follower = new ChangeFollower(store, new Map(), {} as ResponseProducer, clock, quiet, { maxStalenessMs: 2000, held: () => held, advanced: (s) => advanced.push(s) });
    await follower.start();
  });
  afterEach(async () => {
    open();
    follower.close();
    await writer.close();
    await responder.close();
  });

  it('apply() during a drain that read the head before a write resolves only once that write is applied', async () => {
    holdHead();
    const early = follower.apply(); // reads the head (0), then waits at the gate
    await settle();
    await responder.revoke('ca1', '0a', clock.now(), 'keyCompromise'); // this process's own write: SQLite does not tell it
    const seq = await responder.lastChange();
    let done = false;
    const late = follower.apply().then(() => (done = true));
    gate = undefined;
    open();
    await early;
    assert.equal(follower.seq, 0, 'the early drain did not see it');
    await late;
    assert.ok(done);
    assert.equal(follower.seq, seq, 'apply() resolved after a drain that saw the write');
    assert.deepEqual(advanced, [seq]);
  });

  it('while held, every answer from memory waits for a drain begun after it was asked', async () => {
    assert.equal(follower.pending(), false);
    held = true;
    assert.equal(follower.pending(), true);
    await writer.revoke('ca1', '0b', clock.now(), 'keyCompromise');
    await follower.apply();
    assert.equal(follower.seq, await writer.lastChange());
    assert.equal(follower.pending(), true, 'still held: the next answer drains again');
    held = false;
    follower.pending(); // one event-loop turn's check of data_version
    await settle();
    assert.equal(follower.pending(), false);
  });

  it('distrust() makes memory wait for a drain begun after it', async () => {
    assert.equal(follower.pending(), false);
    follower.distrust();
    assert.equal(follower.pending(), true);
    await follower.apply();
    await settle();
    assert.equal(follower.pending(), false);
  });
});
