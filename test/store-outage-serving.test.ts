// The request path and readiness during a store outage, on a fake clock: the daemon's chain on a guarded store with a
// PostgreSQL-like feed (not change-exact, its listener dead) over a real SQLite file whose connection can be "stopped".
// Answers from memory go on within maxStaleness and stop past it; everything else is tryLater at once, never
// internalError; after the store returns, readiness waits until the revocations recorded meanwhile are applied.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { readinessProblems } from '../src/cli/daemon';
import { storeProblems } from '../src/cli/readiness';
import { FakeClock } from '../src/clock';
import { statusForError } from '../src/http/ocsp-status';
import { parseOcspRequest } from '../src/ocsp/request';
import { Authority, makeAuthority } from '../src/source/authority';
import type { Store } from '../src/store/response-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { guardStore } from '../src/store/guarded-store';
import type { StoreOutage } from '../src/store/store-outage';
import { StoreUnavailableError } from '../src/store/store-unavailable';
import { opensslRequest } from './support/openssl';
import { buildChain, TestChain } from './support/serving-chain';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { tempDir } from './support/temp';

const HOUR = 3_600_000;
const ctx = { lane: 'live' as const };
const turn = () => new Promise<void>((r) => setImmediate(r));
const settle = async () => {
  for (let i = 0; i < 10; i++) await turn();
};

/**
 * The responder's connection to the database as PostgresStore has it (not change-exact, NOTIFY never arrives), which
 * can be stopped (every call fails as a refused connection does) and whose change log reads can be held.
 */
function database(inner: Store) {
  const s = { stopped: false, calls: 0, hold: undefined as Promise<void> | undefined, holdOn: 'changesSince', watchers: new Set<() => void>() };
  const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop === 'exact') return false;
      if (prop === 'mayHaveChanged') return () => false;
      // NOTIFY as the test says: on a change, or when the listener connects again.
      if (prop === 'watch') return (l: () => void) => (s.watchers.add(l), () => s.watchers.delete(l));
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || prop === 'close') return typeof value === 'function' ? value.bind(target) : value;
      return async (...args: unknown[]) => {
        s.calls++;
        if (prop === s.holdOn && s.hold) await s.hold;
        if (s.stopped) throw refused();
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store, s };
}

function statusOf(der: Buffer | undefined): number | undefined {
  if (!der) return undefined;
  const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
  return basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber; // 0 good, 1 revoked
}

describe('serving through a store outage', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let responderDb: SqliteStore;
  let cli: SqliteStore;
  let db: ReturnType<typeof database>;
  let outage: StoreOutage;
  let guarded: Store;
  let t: TestChain;
  let authority: Authority;
  const warnings: unknown[] = [];
  const request = (leaves: number[], nonce = false) => parseOcspRequest(opensslRequest(pki.files.ca, leaves.map((i) => pki.files.leaves[i]!), { nonce }), { maxCertIds: 10 });
  const ask = (leaves: number[], nonce = false) => t.chain.response(request(leaves, nonce), ctx);
  const hot = (leaf: number) => statusOf(t.chain.hot!(request([leaf]))?.served()?.der);
  /** The OCSP status the HTTP edge would answer a failure with. */
  const refusedAs = (p: Promise<unknown>) => p.then(() => 'successful', (e: unknown) => statusForError(e));
  const ready = async () => {
    const p = storeProblems({ store: guarded, outage }, t.follower, clock);
    await settle();
    clock.advance(500);
    return p;
  };
  /** Moves the fake clock in steps, letting the follower's polls and the guard's probes run. */
  const run = async (ms: number, step = 50) => {
    for (let i = 0; i < ms / step; i++) {
      clock.advance(step);
      await settle();
    }
  };

  before(async () => {
    pki = await softwarePki();
  });

  beforeEach(async () => {
    clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
    const file = join(tempDir('outage-chain'), 'ocsp-hsm.sqlite');
    responderDb = new SqliteStore(file, clock);
    cli = new SqliteStore(file, clock); // `ocsp-hsm revoke` from another machine: the database itself is up
    await cli.putCertificates(['1001', '1002', '1003'].map((serial) => ({ ca: 'unit', serial, status: 'good' as const })));
    db = database(responderDb);
    const silent = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
    ({ store: guarded, outage } = guardStore(db.store, { clock, log: silent }));
    authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer: pki.responderSigner, responderId: 'byKey', validityMs: HOUR,
      preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: false, hashes: ['sha1'], finalResponsesBeforeMs: undefined },
    });
    warnings.length = 0;
    t = buildChain(guarded, authority, clock, { maxStalenessMs: 2000, log: { warn: (...a: unknown[]) => warnings.push(a), info: () => undefined } });
    await t.follower.start();
  });

  afterEach(async () => {
    t.follower.close();
    await guarded.close();
    await cli.close();
  });

  it('within maxStaleness answers from memory go on; requests that need the store get tryLater at once', async () => {
    assert.equal(statusOf((await ask([0])).der), 0);
    assert.equal(hot(0), 0);
    db.s.stopped = true;
    await run(300); // the follower's poll meets the stopped database: the outage starts
    assert.equal(outage.up, false);
    const calls = db.s.calls;
    assert.equal(hot(0), 0, 'cached: still answered');
    assert.equal(statusOf((await ask([0])).der), 0, 'cached, asynchronous path');
    // Neither the clock nor a call to the database is needed to refuse these.
    assert.equal(await refusedAs(ask([1])), 'tryLater', 'not cached: needs the store');
    assert.equal(await refusedAs(ask([2], true)), 'tryLater', 'a nonce request signed live needs the status');
    assert.equal(await refusedAs(ask([0, 1])), 'tryLater', 'several certificates');
    assert.equal(db.s.calls, calls, 'nothing reached the database but the probes');
    assert.equal(warnings.length, 0, 'the follower does not log an outage the guard logs');
  });

  it('a change signal while the store is still down (the listener back before the probe) stops no answer from memory', async () => {
    await ask([0]);
    db.s.stopped = true;
    await run(300);
    assert.equal(outage.up, false);
    for (const w of db.s.watchers) w(); // the LISTEN connection is back: "changes may have been missed"
    await settle();
    assert.equal(hot(0), 0, 'memory still answers within maxStaleness: no drain could read the log yet');
    // Back, with a revocation recorded meanwhile: the next signal's probe finds it at once, and the signal goes on.
    await cli.revoke('unit', '1001', new Date(clock.now().getTime() - 60_000), 'keyCompromise');
    db.s.stopped = false;
    for (const w of db.s.watchers) w();
    await settle();
    assert.equal(outage.up, true, 'probed at the signal, not at the next 250 ms tick');
    assert.ok(t.follower.seq >= (await cli.lastChange()), 'applied');
    assert.equal(hot(0), undefined);
    assert.equal(statusOf((await ask([0])).der), 1);
  });

  it('a poll of the change log that meets the database going away does not stop answers from memory', async () => {
    await ask([0]);
    let release!: () => void;
    db.s.holdOn = 'lastChange';
    db.s.hold = new Promise<void>((r) => (release = r));
    clock.advance(250); // the poll begins: its read of the log's head is in flight
    await settle();
    assert.equal(hot(0), undefined, 'while a read of the log is in flight, requests wait for it');
    const waiting = ask([0]);
    db.s.stopped = true;
    db.s.hold = undefined;
    release(); // and it fails: the database went away under it
    assert.equal(statusOf((await waiting).der), 0, 'answered from memory, within maxStaleness');
    assert.equal(outage.up, false);
    assert.equal(hot(0), 0);
  });

  it('past maxStaleness nothing comes from memory: tryLater, never internalError', async () => {
    await ask([0]);
    db.s.stopped = true;
    await run(2100);
    assert.equal(hot(0), undefined);
    for (const leaves of [[0], [1], [0, 1]]) assert.equal(await refusedAs(ask(leaves)), 'tryLater', String(leaves));
    const e = await ask([0]).catch((x: unknown) => x);
    assert.ok(e instanceof StoreUnavailableError);
    assert.match((e as Error).message, /^store unavailable since .*ECONNREFUSED/);
  });

  it('after the store returns, ready only once the revocations recorded meanwhile are applied', async () => {
    await ask([0]);
    assert.equal(hot(0), 0);
    db.s.stopped = true;
    await run(300);
    assert.match((await ready())[0] ?? '', /^store: unavailable since .*; requests that need it get tryLater/);
    // The database is up for everyone else (a partition, or it restarted): a revocation is recorded meanwhile.
    await cli.revoke('unit', '1001', new Date(clock.now().getTime() - 60_000), 'keyCompromise');
    const head = await cli.lastChange();
    await run(2000);
    // It comes back, but this responder's reads of the change log are slow to answer.
    let release!: () => void;
    db.s.hold = new Promise<void>((r) => (release = r));
    db.s.stopped = false;
    await run(300);
    assert.equal(outage.up, true, 'the probe found it back');
    assert.ok(t.follower.seq < head, 'the revocation is not applied yet');
    const problems = await ready();
    assert.equal(problems.length, 1);
    assert.match(problems[0]!, /^store: back since \d+ ms, change feed not yet current/);
    assert.equal(hot(0), undefined, 'nothing from memory either');
    db.s.hold = undefined;
    release();
    await settle();
    assert.ok(t.follower.seq >= head, 'applied');
    assert.deepEqual(await ready(), []);
    assert.equal(statusOf((await ask([0])).der), 1);
  });

  it('never ready before the revocations recorded during the outage are applied, however the checks fall', async () => {
    await ask([0]);
    db.s.stopped = true;
    await run(300);
    await cli.revoke('unit', '1001', new Date(clock.now().getTime() - 60_000), 'keyCompromise');
    await cli.revoke('unit', '1002', new Date(clock.now().getTime() - 60_000), 'superseded');
    const head = await cli.lastChange();
    db.s.stopped = false;
    let readyAt: number | undefined;
    // Checks every 37 ms against the guard's 250 ms probes and the follower's 250 ms polls.
    for (let i = 0; i < 40; i++) {
      const problems = await readinessProblems({ tokens: new Map() }, { store: guarded, outage }, { validity: { problems: () => [] } as never, follower: t.follower }, clock);
      if (problems.length === 0) {
        readyAt ??= i;
        assert.ok(t.follower.seq >= head, `ready at step ${i} with the feed at ${t.follower.seq} of ${head}`);
      }
      clock.advance(37);
      await settle();
    }
    assert.ok(readyAt !== undefined && readyAt <= 10, `ready again within 10 checks (at ${readyAt})`);
  });
});
