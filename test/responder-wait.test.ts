// `?wait=all` on a real SQLite store with a fake clock: answered when every live responder's row reached the change's
// seq; at the timeout, naming those that had not; rows older than the liveness window ignored; a responder that starts
// mid-wait waited for, one that goes stale mid-wait still named, one that shut down cleanly not; one poll for every
// waiting request. Then through the publishing API: 200 when applied, 202 naming the laggard, `wait` checked first.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../src/clock';
import { livenessWindowMs } from '../src/cluster/heartbeat';
import { Publisher } from '../src/publish/publisher';
import { ResponderWait, WaitOutcome } from '../src/publish/responder-wait';
import { PublishingListener, startPublishing } from '../src/publish/server';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { beatOf } from './support/describe-responders';
import { softwarePki } from './support/software-pki';
import { tempDir } from './support/temp';

const LIVENESS = livenessWindowMs(1000, 2000);
const TIMEOUT = 5000;
const settle = async () => {
  for (let i = 0; i < 5; i++) await new Promise<void>((r) => setImmediate(r));
};

describe('waiting for every live responder', () => {
  let clock: FakeClock;
  let store: SqliteStore;
  let reads = 0;
  let failReads = false;
  let wait: ResponderWait;
  const beat = (id: string, appliedSeq: number) => store.beat(beatOf(id, { appliedSeq, startedAt: clock.now() }));
  /** Resolves `p` while moving the fake clock in 10 ms steps; returns the outcome and when it came, or undefined by `limitMs`. */
  async function run(p: Promise<WaitOutcome>, limitMs: number, during?: (elapsedMs: number) => Promise<void> | void) {
    let outcome: WaitOutcome | undefined;
    void p.then((o) => (outcome = o));
    for (let t = 0; t <= limitMs && !outcome; t += 10) {
      await during?.(t);
      await settle();
      if (!outcome) clock.advance(10);
    }
    return outcome;
  }

  beforeEach(() => {
    clock = new FakeClock('2026-05-01T00:00:00Z');
    store = new SqliteStore(join(tempDir('wait'), 'store.sqlite'), clock);
    reads = 0;
    failReads = false;
    const counting = {
      responders: () => {
        reads++;
        return failReads ? Promise.reject(new Error('the store is away (test)')) : store.responders();
      },
    };
    wait = new ResponderWait({ store: counting, clock, livenessMs: LIVENESS, timeoutMs: TIMEOUT });
  });
  afterEach(() => store.close());

  it('answers at the first read when every live responder has applied the change', async () => {
    await beat('a', 12);
    await beat('b', 15);
    const o = await run(wait.untilApplied(12), 0);
    assert.deepEqual(o, { seq: 12, applied: true, responders: 2, waitedMs: 0, notApplied: [] });
    assert.equal(reads, 1);
  });

  it('answers once a responder behind records the change, polling every 50 ms', async () => {
    await beat('a', 12);
    await beat('b', 11);
    const o = await run(wait.untilApplied(12), TIMEOUT, async (t) => {
      if (t === 120) await beat('b', 12);
    });
    assert.equal(o?.applied, true);
    assert.equal(o?.waitedMs, 150, 'the read after the row was written');
    assert.equal(reads, 4, 'at 0, 50, 100 and 150 ms');
  });

  it('times out naming the responders that had not applied the change, and not before', async () => {
    await beat('a', 12);
    await beat('b', 9);
    await beat('c', 11);
    clock.advance(300);
    const p = wait.untilApplied(12);
    const early = await run(p, TIMEOUT - 20);
    assert.equal(early, undefined, 'still waiting just before the timeout');
    const o = await run(p, 100);
    assert.equal(o?.applied, false);
    assert.equal(o?.waitedMs, TIMEOUT);
    assert.equal(o?.responders, 3);
    assert.deepEqual(o?.notApplied, [
      { id: 'b', host: 'node-a', pid: 4242, worker: 0, appliedSeq: 9, heartbeatAgeMs: 300 + TIMEOUT - 50, live: false },
      { id: 'c', host: 'node-a', pid: 4242, worker: 0, appliedSeq: 11, heartbeatAgeMs: 300 + TIMEOUT - 50, live: false },
    ]);
    assert.ok(reads <= TIMEOUT / 50 + 2, `${reads} reads in ${TIMEOUT} ms`);
  });

  it('ignores rows whose heartbeat is older than the liveness window', async () => {
    await beat('dead', 3);
    clock.advance(LIVENESS + 1);
    await beat('a', 12);
    const o = await run(wait.untilApplied(12), 0);
    assert.deepEqual(o, { seq: 12, applied: true, responders: 1, waitedMs: 0, notApplied: [] });
  });

  it('a row exactly at the edge of the window is still live', async () => {
    await beat('edge', 3);
    clock.advance(LIVENESS);
    const o = await run(wait.untilApplied(12), 0);
    assert.equal(o, undefined);
  });

  it('waits for a responder that starts during the wait behind the change, and for one that went stale during it', async () => {
    await beat('a', 12);
    await beat('sleeper', 11); // stops beating: goes stale after LIVENESS, still named
    const o = await run(wait.untilApplied(12), TIMEOUT + 100, async (t) => {
      if (t === 100) await beat('newcomer', 11);
      if (t % 1000 === 0) await beat('a', 12);
    });
    assert.equal(o?.applied, false);
    assert.deepEqual(o?.notApplied.map((l) => [l.id, l.live]), [['newcomer', false], ['sleeper', false]]);
    assert.equal(o?.responders, 3);
  });

  it('stops waiting for a responder whose row a clean shutdown removed', async () => {
    await beat('a', 12);
    await beat('leaving', 10);
    const o = await run(wait.untilApplied(12), TIMEOUT, async (t) => {
      if (t === 200) await store.forgetResponder('leaving');
    });
    assert.equal(o?.applied, true);
    assert.equal(o?.responders, 1);
    assert.ok(o!.waitedMs >= 200 && o!.waitedMs <= 260, String(o?.waitedMs));
  });

  it('requests waiting together share one read per poll', async () => {
    await beat('a', 5);
    const ps = Array.from({ length: 20 }, (_, i) => wait.untilApplied(i + 1));
    let done: WaitOutcome[] | undefined;
    void Promise.all(ps).then((o) => (done = o));
    for (let t = 0; t < 1000 && !done; t += 10) {
      if (t === 500) await beat('a', 20);
      await settle();
      clock.advance(10);
    }
    assert.ok(done);
    assert.ok(done!.every((o) => o.applied));
    assert.ok(reads <= 500 / 50 + 3, `${reads} reads for 20 requests`);
  });

  it('a store that cannot be read is retried, and at the timeout the outcome says so', async () => {
    await beat('a', 10);
    failReads = true;
    const o = await run(wait.untilApplied(12), TIMEOUT + 100);
    assert.equal(o?.applied, false);
    assert.match(o?.error ?? '', /the store is away/);
    assert.ok(reads > 50, 'retried every poll');
  });
});

describe('publishing API with ?wait', () => {
  const TOKEN = 'be47'.repeat(16);
  let clock: FakeClock;
  let store: SqliteStore;
  let listener: PublishingListener;
  let base: string;
  let mode: 'none' | 'all' = 'none';
  const waited: WaitOutcome[] = [];

  beforeEach(async () => {
    const dir = tempDir('publish-wait');
    const pki = await softwarePki();
    clock = new FakeClock('2026-05-01T00:00:00Z');
    store = new SqliteStore(join(dir, 'store.sqlite'), clock);
    writeFileSync(join(dir, 'token'), TOKEN + '\n', { mode: 0o600 });
    const publisher = new Publisher({ store, cas: new Map([['ca1', [pki.ca]]]), clock, afterWrite: async () => undefined, warn: () => undefined });
    const responders = new ResponderWait({ store, clock, livenessMs: LIVENESS, timeoutMs: TIMEOUT });
    const wait = { get mode() { return mode; }, responders, waited: (o: WaitOutcome) => void waited.push(o) };
    listener = await startPublishing(
      { host: '127.0.0.1', port: 0, bodyLimit: 4096, auth: { tokenFile: 'token' } },
      { publisher, wait, path: (p) => join(dir, p), requestTimeoutMs: 30_000, logger: pino({ level: 'silent' }) },
    );
    base = `http://127.0.0.1:${listener.port}`;
    waited.length = 0;
    mode = 'none';
  });
  afterEach(async () => {
    await listener.close();
    await store.close();
  });

  /** Posts, moving the fake clock while the answer is awaited (the wait's timers run on it). */
  async function post(path: string, body: unknown) {
    const r = fetch(base + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    let answered = false;
    void r.then(() => (answered = true), () => (answered = true));
    while (!answered) {
      await new Promise((res) => setTimeout(res, 2));
      clock.advance(50);
    }
    const res = await r;
    return { status: res.status, json: (await res.json()) as Record<string, any> };
  }
  const revocation = (serial: string) => ({ serial, revokedAt: '2026-04-01T00:00:00Z', reason: 'keyCompromise' });

  it('?wait=all answers 200 once every live responder applied the revocation, with the seq waited for', async () => {
    await store.beat(beatOf('a', { appliedSeq: 1000 }));
    const r = await post('/v1/cas/ca1/revocations?wait=all', revocation('a001'));
    assert.equal(r.status, 200, JSON.stringify(r.json));
    const seq = await store.lastChange();
    assert.deepEqual(r.json.wait, { seq, applied: true, responders: 1, waitedMs: r.json.wait.waitedMs, notApplied: [] });
    assert.equal(r.json.certificate.status, 'revoked');
    assert.equal(waited.length, 1);
  });

  it('?wait=all answers 202 at the timeout, naming the responder behind; the revocation is recorded', async () => {
    await store.beat(beatOf('a', { appliedSeq: 1000 }));
    await store.beat(beatOf('behind', { appliedSeq: 0, host: 'node-z', pid: 77, worker: 3 }));
    const r = await post('/v1/cas/ca1/revocations?wait=all', revocation('a002'));
    assert.equal(r.status, 202, JSON.stringify(r.json));
    assert.equal(r.json.wait.applied, false);
    assert.ok(r.json.wait.waitedMs >= TIMEOUT, String(r.json.wait.waitedMs));
    assert.deepEqual(r.json.wait.notApplied.map((l: any) => [l.id, l.host, l.pid, l.worker, l.appliedSeq]), [['behind', 'node-z', 77, 3, 0]]);
    assert.equal((await store.getCertificate('ca1', 'a002'))?.status, 'revoked');
    // A repeat (a CA retrying) waits for the same change again.
    await store.beat(beatOf('behind', { appliedSeq: 1000, host: 'node-z', pid: 77, worker: 3 }));
    const again = await post('/v1/cas/ca1/revocations?wait=all', revocation('a002'));
    assert.equal(again.status, 200);
    assert.equal(again.json.outcome, 'unchanged');
    assert.equal(again.json.wait.seq, r.json.wait.seq);
  });

  it('cluster.wait: all is the default; ?wait=none answers at once; a bad wait is refused before anything is written', async () => {
    await store.beat(beatOf('behind', { appliedSeq: 0 }));
    mode = 'all';
    const byDefault = await post('/v1/cas/ca1/certificates', { serial: 'b001' });
    assert.equal(byDefault.status, 202);
    const none = await post('/v1/cas/ca1/certificates?wait=none', { serial: 'b002' });
    assert.equal(none.status, 200);
    assert.equal(none.json.wait, undefined);
    const seq = await store.lastChange();
    for (const q of ['?wait=some', '?wait=all&wait=none', '?wait=']) {
      const bad = await post(`/v1/cas/ca1/revocations${q}`, revocation('b003'));
      assert.equal(bad.status, 400, q);
      assert.equal(bad.json.field, 'wait', q);
    }
    assert.equal(await store.lastChange(), seq, 'nothing written');
    assert.equal(await store.getCertificate('ca1', 'b003'), undefined);
  });
});
