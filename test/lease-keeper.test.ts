// The lease keeper on real SQLite stores (two responders: two connections to one file), each on its own fake clock
// moved in step, so one responder can be paused (its clock stopped, as SIGSTOP or a long GC would) or cut off from
// the store: takeover after expiry, renewal, epochs, release on close, the local deadline, and fenced batches.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { LeaseHold, LeaseKeeper } from '../src/cluster/lease-keeper';
import { LeaseMetrics } from '../src/metrics/lease-metrics';
import type { Lease, LeaseClaim, LeaseStore } from '../src/store/lease-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { response, stamp } from './support/describe-store';
import { advanceAll } from './support/responder-clocks';
import { tempDir } from './support/temp';

const LEASE = 9_000;
const START = '2026-06-01T00:00:00Z';

interface Line {
  level: 'info' | 'warn';
  fields: Record<string, unknown>;
  msg: string;
}

function recordingLog(lines: Line[]) {
  return {
    info: (fields: Record<string, unknown>, msg: string) => void lines.push({ level: 'info', fields, msg }),
    warn: (fields: Record<string, unknown>, msg: string) => void lines.push({ level: 'warn', fields, msg }),
  } as never;
}

/** A store whose lease calls hang from `cut()` on, as over a network partition: sent, never answered. */
function partitionable(store: LeaseStore): LeaseStore & { cut(): void } {
  let cut = false;
  const hang = <T>(call: () => Promise<T>): Promise<T> => (cut ? new Promise<T>(() => undefined) : call());
  return {
    cut: () => void (cut = true),
    acquireLease: (c: LeaseClaim) => hang(() => store.acquireLease(c)),
    releaseLease: (f) => hang(() => store.releaseLease(f)),
    readLease: (n) => hang(() => store.readLease(n)),
  };
}

interface Responder {
  id: string;
  clock: FakeClock;
  store: SqliteStore;
  keeper: LeaseKeeper;
  lines: Line[];
  holds: { hold: LeaseHold; gainedNow: boolean }[];
  registry: Registry;
}

function cluster() {
  const file = join(tempDir('lease'), 'store.sqlite');
  const responders: Responder[] = [];
  const add = (id: string, wrap: (s: SqliteStore) => LeaseStore = (s) => s): Responder => {
    const clock = new FakeClock(START);
    // In step with the others: a responder added later starts at the same wall and monotonic time.
    if (responders[0]) clock.advance(responders[0].clock.monotonicMs());
    const store = new SqliteStore(file, clock);
    const lines: Line[] = [];
    const registry = new Registry();
    const keeper = new LeaseKeeper(wrap(store), clock, { name: 'services', holder: id, leaseMs: LEASE }, recordingLog(lines), new LeaseMetrics(registry));
    const r: Responder = { id, clock, store, keeper, lines, holds: [], registry };
    keeper.subscribe((hold, gainedNow) => r.holds.push({ hold, gainedNow }));
    responders.push(r);
    return r;
  };
  const advance = (ms: number, paused: Responder[] = []) => advanceAll(responders, ms, paused);
  return { add, advance, read: (): Promise<Lease | undefined> => responders[0]!.store.readLease('services') };
}

async function gauge(r: Responder): Promise<string> {
  return (await r.registry.metrics()).split('\n').filter((l) => /^ocsp_lease_(held|changes_total)\{/.test(l)).join('\n');
}

describe('LeaseKeeper on SQLite', () => {
  it('one of two responders holds the lease and renews it; the other keeps trying; a pause past the lease hands it over', async () => {
    const c = cluster();
    const a = c.add('A');
    await a.keeper.start();
    const b = c.add('B');
    await b.keeper.start();
    assert.equal(a.keeper.current()?.fence.epoch, 1);
    assert.equal(b.keeper.current(), undefined);
    assert.deepEqual(a.holds.map((h) => h.gainedNow), [true]);
    assert.match(b.lines.map((l) => l.msg).join('\n'), /lease held by another responder/);
    // Renewed: three leases later A still holds the first hold.
    await c.advance(3 * LEASE);
    assert.equal(a.keeper.current()?.fence.epoch, 1);
    assert.ok(!a.holds[0]!.hold.signal.aborted);
    assert.equal(b.keeper.current(), undefined);
    assert.equal(await gauge(a), 'ocsp_lease_held{lease="services"} 1\nocsp_lease_changes_total{lease="services",change="gained"} 1');
    assert.equal(await gauge(b), 'ocsp_lease_held{lease="services"} 0');

    // A is paused: no timer, no renewal. B takes over once the lease expired, not before.
    const renewedAt = (await c.read())!.expiresAt.getTime() - LEASE;
    const stoppedAt = b.clock.now().getTime();
    await c.advance(LEASE - (stoppedAt - renewedAt) - 100, [a]);
    assert.equal(b.keeper.current(), undefined, 'not before the lease expired');
    await c.advance(LEASE / 3 + 200, [a]);
    assert.equal(b.keeper.current()?.fence.epoch, 2, 'within a third of the lease after its expiry');
    const taken = (await c.read())!;
    assert.deepEqual({ holder: taken.holder, epoch: taken.epoch }, { holder: 'B', epoch: 2 });
    assert.ok(taken.acquiredAt.getTime() - stoppedAt <= (4 / 3) * LEASE, 'within 4/3 of the lease of the last renewal');

    // A resumes: its overdue renewal finds B's lease; its hold ends (signal aborted) and it logs so.
    await c.advance(100);
    assert.equal(a.keeper.current(), undefined);
    assert.ok(a.holds[0]!.hold.signal.aborted);
    const lost = a.lines.find((l) => l.msg.startsWith('lease lost'));
    assert.equal(lost?.level, 'warn');
    assert.ok(lost?.fields.reason === 'taken over by B' || /local deadline/.test(String(lost?.fields.reason)), String(lost?.fields.reason));
    assert.equal(await gauge(a), 'ocsp_lease_held{lease="services"} 0\nocsp_lease_changes_total{lease="services",change="gained"} 1\nocsp_lease_changes_total{lease="services",change="lost"} 1');
    await Promise.all([a.keeper.close(), b.keeper.close()]);
  });

  it('a stale holder\'s batch, made under its hold and stored after the takeover, is refused by its fence', async () => {
    const c = cluster();
    const a = c.add('A');
    await a.keeper.start();
    const b = c.add('B');
    await b.keeper.start();
    const hold = a.keeper.current()!;
    const batch = await stamp(a.store, [response('s1', 'sha1', 0), response('s2', 'sha1', 0)]);
    // A pauses mid-run with its signed batch in hand; B takes over and stores its own.
    await c.advance(2 * LEASE, [a]);
    const bHold = b.keeper.current()!;
    assert.deepEqual(await b.store.putResponses(batch.slice(0, 1), bHold.fence), { stored: 1, skippedFinal: 0, stale: 0 });
    // A resumes and stores what it signed before its first timer fires: the store refuses it.
    assert.deepEqual(await a.store.putResponses(batch, hold.fence), { stored: 0, skippedFinal: 0, stale: 2 });
    assert.equal(await b.store.getResponse('ca1', 's2', 'sha1'), undefined);
    await Promise.all([a.keeper.close(), b.keeper.close()]);
  });

  it('epochs count holds: each takeover and each new hold of the same responder takes the next', async () => {
    const c = cluster();
    const a = c.add('A');
    const b = c.add('B');
    await a.keeper.start();
    await b.keeper.start();
    const epochs: string[] = [];
    const note = async () => {
      const l = (await c.read())!;
      if (epochs.at(-1) !== `${l.holder}${l.epoch}`) epochs.push(`${l.holder}${l.epoch}`);
    };
    await note();
    await c.advance(2 * LEASE, [a]);
    await note();
    await c.advance(100);
    await c.advance(2 * LEASE, [b]);
    await note();
    assert.deepEqual(epochs, ['A1', 'B2', 'A3']);
    assert.deepEqual(a.holds.map((h) => [h.hold.fence.epoch, h.gainedNow]), [[1, true], [3, true]]);
    await Promise.all([a.keeper.close(), b.keeper.close()]);
  });

  it('closing releases the lease: the other responder holds it at its next attempt, long before expiry', async () => {
    const c = cluster();
    const a = c.add('A');
    const b = c.add('B');
    await a.keeper.start();
    await b.keeper.start();
    await c.advance(LEASE / 2);
    const hold = a.keeper.current()!;
    await a.keeper.close();
    assert.ok(hold.signal.aborted);
    assert.equal(a.lines.find((l) => l.msg.startsWith('lease released'))?.level, 'info');
    const released = (await c.read())!;
    assert.deepEqual(released.expiresAt, a.clock.now(), 'expires now');
    await c.advance(LEASE / 3 + 100, [a]);
    assert.equal(b.keeper.current()?.fence.epoch, 2);
    assert.ok((await c.read())!.acquiredAt.getTime() - released.expiresAt.getTime() <= LEASE / 3 + 100);
    // A closed keeper claims no more.
    await c.advance(3 * LEASE, [a]);
    assert.equal((await c.read())!.holder, 'B');
    await b.keeper.close();
  });

  it('a holder whose store calls hang stops at its local deadline, before anyone else may take the lease', async () => {
    const c = cluster();
    let link: ReturnType<typeof partitionable> | undefined;
    const a = c.add('A', (s) => (link = partitionable(s)));
    const b = c.add('B');
    await a.keeper.start();
    await b.keeper.start();
    await c.advance(LEASE);
    // Partitioned right after a renewal: the store keeps A's lease until renewal + LEASE.
    const renewal = (await c.read())!;
    const renewedAt = renewal.expiresAt.getTime() - LEASE;
    link!.cut();
    const hold = a.keeper.current()!;
    let endedAt: number | undefined;
    hold.signal.addEventListener('abort', () => (endedAt = a.clock.now().getTime()));
    await c.advance(LEASE + LEASE / 3 + 200);
    assert.ok(endedAt !== undefined, 'the hold ended');
    assert.ok(endedAt - renewedAt <= LEASE * 0.8 + 100, `ended ${endedAt - renewedAt} ms after the last renewal, by the local deadline`);
    assert.ok(endedAt < renewal.expiresAt.getTime(), 'before the store lets another responder take over');
    assert.match(String(a.lines.find((l) => l.msg.startsWith('lease lost'))?.fields.reason), /local deadline/);
    assert.equal(a.lines.filter((l) => /does not answer/.test(l.msg)).length, 0, 'a hanging call is not an error (yet)');
    assert.equal(b.keeper.current()?.fence.epoch, 2, 'B took over after expiry');
    await b.keeper.close();
  });

  it('a holder whose store fails (connection closed) stops at its local deadline and says so once', async () => {
    const c = cluster();
    const a = c.add('A');
    await a.keeper.start();
    const hold = a.keeper.current()!;
    await a.store.close();
    await c.advance(LEASE * 0.8 - 100);
    assert.ok(!hold.signal.aborted, 'still held before the deadline');
    await c.advance(200);
    assert.ok(hold.signal.aborted, 'ended at the deadline');
    await c.advance(2 * LEASE);
    assert.equal(a.lines.filter((l) => /the store does not answer/.test(l.msg)).length, 1, 'said once while it lasts');
    await a.keeper.close();
  });

  it('a listener that subscribes while the hold runs is told at once, not as a new hold', async () => {
    const c = cluster();
    const a = c.add('A');
    await a.keeper.start();
    const seen: boolean[] = [];
    const stop = a.keeper.subscribe((_, gainedNow) => seen.push(gainedNow));
    stop();
    assert.deepEqual(seen, [false]);
    await a.keeper.close();
  });
});
