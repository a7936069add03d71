// Each interleaving that could answer "good" after a revocation, driven by hand: a signer that waits until told, a
// store whose reads can be held, a fake clock. The revocation lands exactly between the two awaits of each race.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { FakeClock } from '../src/clock';
import { parseOcspRequest } from '../src/ocsp/request';
import { PreSigner } from '../src/presign/pre-signer';
import { Authority, makeAuthority } from '../src/source/authority';
import type { HashName } from '../src/ocsp/oids';
import { LookupBatcher } from '../src/store/lookup-batcher';
import type { Store } from '../src/store/response-store';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { GateSigner } from './support/gate-signer';
import { opensslRequest } from './support/openssl';
import { buildChain, quiet, TestChain } from './support/serving-chain';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { tempDir } from './support/temp';

const HOUR = 3_600_000;
const ctx = { lane: 'live' as const };
const turn = () => new Promise<void>((r) => setImmediate(r));

/** Signs when released: while held, every signature waits. */

/** A store whose chosen method calls can be held after they read, and made to fail. */
function controllable(inner: Store) {
  const held = new Map<string, { gate: Promise<void>; open: () => void }>();
  const failing = new Map<string, number>();
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      const name = String(prop);
      return async (...args: unknown[]) => {
        if ((failing.get(name) ?? 0) > 0) {
          failing.set(name, failing.get(name)! - 1);
          throw new Error(`${name} failed (test)`);
        }
        const result = await (value as (...a: unknown[]) => unknown).apply(target, args);
        const h = held.get(name);
        if (h) await h.gate;
        return result;
      };
    },
  });
  // Synchronous members stay synchronous.
  const sync = new Proxy(store, {
    get(target, prop, receiver) {
      if (prop === 'mayHaveChanged' || prop === 'watch') return (inner as unknown as Record<string, (...a: unknown[]) => unknown>)[prop]!.bind(inner);
      return Reflect.get(target, prop, receiver);
    },
  });
  return {
    store: sync as Store,
    hold(name: string) {
      let open!: () => void;
      held.set(name, { gate: new Promise<void>((r) => (open = r)), open });
    },
    release(name: string) {
      held.get(name)?.open();
      held.delete(name);
    },
    fail(name: string, times: number) {
      failing.set(name, times);
    },
  };
}

function statusOf(der: Buffer | undefined): number | undefined {
  if (!der) return undefined;
  const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
  return basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber; // 0 good, 1 revoked
}

describe('revocation races', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let file: string;
  let responder: SqliteStore;
  let cli: SqliteStore;
  let ctl: ReturnType<typeof controllable>;
  let signer: GateSigner;
  let authority: Authority;
  let t: TestChain;
  const request = (leaves: number[], nonce = false) => parseOcspRequest(opensslRequest(pki.files.ca, leaves.map((i) => pki.files.leaves[i]!), { nonce }), { maxCertIds: 10 });
  const ask = (leaves: number[], via: TestChain = t) => via.chain.response(request(leaves), ctx);
  const hot = (leaf: number, via: TestChain = t) => statusOf(via.chain.hot!(request([leaf]))?.served()?.der);
  const revoke = (serial: string) => cli.revoke('unit', serial, new Date(clock.now().getTime() - 60_000), 'keyCompromise');
  const stored = async (serial: string) => statusOf((await responder.getResponse('unit', serial, 'sha1'))?.der);

  before(async () => {
    pki = await softwarePki();
  });

  beforeEach(async () => {
    clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
    file = join(tempDir('race'), 'ocsp-hsm.sqlite');
    responder = new SqliteStore(file, clock);
    cli = new SqliteStore(file, clock); // another process: `ocsp-hsm revoke`
    await cli.putCertificates(['1001', '1002', '1003'].map((serial) => ({ ca: 'unit', serial, status: 'good' as const })));
    ctl = controllable(responder);
    signer = new GateSigner(pki.responderSigner);
    authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, responderId: 'byKey', validityMs: HOUR,
      preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: false, hashes: ['sha1'], finalResponsesBeforeMs: undefined },
    });
    t = buildChain(ctl.store, authority, clock);
    await t.follower.start();
  });

  afterEach(async () => {
    signer.release();
    t.follower.close();
    await cli.close();
    await responder.close();
  });

  it('sign-then-store: a response the pre-signer signed before a revocation is not stored after it', async () => {
    signer.hold();
    const ps = new PreSigner(ctl.store, [authority], t.producer, clock, { refreshAfter: 0.5, concurrency: 3, batchSize: 10 }, quiet);
    const run = ps.run();
    await signer.until(3); // all three read as good and being signed
    await revoke('1001');
    signer.release();
    const r = await run;
    assert.deepEqual({ stored: r.stored, stale: r.stale }, { stored: 2, stale: 1 });
    assert.equal(await stored('1001'), undefined, 'no good response stored for the revoked certificate');
    assert.equal(await stored('1002'), 0);
  });

  it('store on demand and shared signatures: a request after a revocation never joins or caches a signature begun before it', async () => {
    signer.hold();
    const early = ask([0]);
    await signer.until(1);
    await revoke('1001');
    await turn(); // the next request comes in a later event-loop turn
    const late = ask([0]);
    await signer.until(2); // it signs on its own instead of joining the early one
    signer.release();
    assert.equal(statusOf((await early).der), 0, 'the request that came before the revocation may say good');
    assert.equal(statusOf((await late).der), 1, 'the one after it says revoked');
    await turn();
    assert.equal(await stored('1001'), 1, 'only the revoked response was stored');
    assert.equal(hot(0), 1, 'and only it is in memory');
  });

  it('cache fill after an await: a stored "good" read before a revocation is not cached after it', async () => {
    await ask([1]);
    await turn();
    assert.equal(await stored('1002'), 0);
    t.follower.close();
    t = buildChain(ctl.store, authority, clock); // empty cache, a good response in the store
    await t.follower.start();
    ctl.hold('getResponse');
    const early = ask([1]);
    await turn();
    await revoke('1002');
    await t.follower.apply();
    ctl.release('getResponse');
    assert.equal(statusOf((await early).der), 0, 'read before the revocation');
    assert.equal(hot(1), undefined, 'but not kept in memory');
    assert.equal(statusOf((await ask([1])).der), 1);
    assert.equal(hot(1), 1);
  });

  it('follower failure: while a change cannot be applied nothing is answered from memory, and it is applied on retry', async () => {
    await ask([0]);
    assert.equal(hot(0), 0);
    const seq = t.follower.seq;
    ctl.fail('changesSince', 2);
    await revoke('1001');
    await turn();
    assert.equal(hot(0), undefined, 'a change is pending: not from memory');
    assert.equal(statusOf((await ask([0])).der), 1, 'answered from the store, which says revoked');
    assert.equal(t.follower.seq, seq, 'the position did not move past the change it could not apply');
    assert.equal(hot(0), undefined, 'still not from memory after the failed attempts');
    for (let i = 0; i < 20 && t.follower.pending(); i++) {
      clock.advance(1000); // past the retry's backoff
      await turn();
    }
    assert.ok(t.follower.seq > seq, 'applied on retry');
    assert.equal(statusOf((await ask([0])).der), 1);
    assert.equal(hot(0), 1);
  });

  it('live multi-certificate requests: a revocation ends sharing of a signature in flight', async () => {
    signer.hold();
    const early = ask([0, 1]);
    await signer.until(1);
    await revoke('1002');
    await turn();
    const late = ask([0, 1]);
    await signer.until(2);
    signer.release();
    const second = (der: Buffer) =>
      pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView).tbsResponseData.responses[1]!.certStatus.idBlock.tagNumber;
    assert.equal(second((await early).der), 0);
    assert.equal(second((await late).der), 1);
  });

  it('nonce whenIdle: a request after a revocation is signed revoked while one begun before is held; neither is stored nor cached', async () => {
    const whenIdle = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, responderId: 'byKey', validityMs: HOUR,
      preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: false, hashes: ['sha1'], finalResponsesBeforeMs: undefined, nonce: 'whenIdle' },
    });
    const n = buildChain(ctl.store, whenIdle, clock);
    await n.follower.start();
    try {
      const askNonce = () => n.chain.response(request([0], true), ctx);
      signer.hold();
      const early = askNonce();
      await signer.until(1); // read good, being signed live with its nonce
      await revoke('1001');
      await turn();
      const late = askNonce();
      await signer.until(2); // signed on its own, from the status read after the revocation
      signer.release();
      assert.equal(statusOf((await early).der), 0, 'the request that came before the revocation may say good');
      assert.equal(statusOf((await late).der), 1, 'the one after it says revoked');
      assert.deepEqual(n.nonces.stats, { signed: 2, preproduced: 0 });
      await turn();
      assert.equal(await stored('1001'), undefined, 'answers with a nonce are never stored');
      assert.equal(statusOf(n.chain.hot!(request([0]))?.served()?.der), undefined, 'nor kept in memory');
    } finally {
      n.follower.close();
    }
  });

  it('reload while a production is in flight: what it signed before a revocation is neither stored nor served by the new configuration', async () => {
    signer.hold();
    const inFlight = ask([2]);
    await signer.until(1);
    await revoke('1003');
    // SIGHUP: a new chain and follower; the old follower stops.
    const reloaded = buildChain(ctl.store, authority, clock);
    await reloaded.follower.start();
    t.follower.close();
    signer.release();
    assert.equal(statusOf((await inFlight).der), 0);
    await turn();
    assert.equal(await stored('1003'), undefined, 'not stored: the status changed while it was signed');
    assert.equal(statusOf((await ask([2], reloaded)).der), 1);
    assert.equal(hot(2, reloaded), 1);
    reloaded.follower.close();
  });

  describe('a feed that pushes changes (PostgreSQL) with a dead listener', () => {
    let pushed: TestChain;
    let pg: ReturnType<typeof controllable>;

    beforeEach(async () => {
      // As PostgresStore: not change-exact, and its LISTEN connection silently dead (watch never fires).
      const base = controllable(responder);
      pg = base;
      const store = new Proxy(base.store, {
        get(target, prop, receiver) {
          if (prop === 'exact') return false;
          if (prop === 'mayHaveChanged') return () => false;
          if (prop === 'watch') return () => () => undefined;
          return Reflect.get(target, prop, receiver);
        },
      });
      pushed = buildChain(store, authority, clock, { maxStalenessMs: 1000 });
      await pushed.follower.start();
    });

    afterEach(() => pushed.follower.close());

    it('polling the change log\'s head applies a revocation within a quarter of maxStaleness', async () => {
      await ask([0], pushed);
      assert.equal(hot(0, pushed), 0);
      await revoke('1001');
      clock.advance(250);
      for (let i = 0; i < 20 && hot(0, pushed) !== undefined; i++) await turn();
      assert.equal(hot(0, pushed), undefined, 'the cached good answer is gone');
      assert.equal(statusOf((await ask([0], pushed)).der), 1);
    });

    it('once the feed cannot be proved current for maxStaleness, nothing is answered from memory', async () => {
      await ask([0], pushed);
      pg.fail('lastChange', 1_000);
      clock.advance(900);
      await turn();
      assert.equal(hot(0, pushed), 0, 'within maxStaleness: from memory');
      clock.advance(200);
      assert.equal(hot(0, pushed), undefined, 'past maxStaleness: not from memory');
      await revoke('1001');
      assert.equal(statusOf((await ask([0], pushed)).der), 1, 'the store answers');
      assert.ok(pushed.follower.lagMs() > 1000);
    });
  });
  describe('a store that batches lookups (PostgreSQL), cache off', () => {
    /**
     * As PostgresStore: no synchronous reads; getResponse and getCertificate go out through a LookupBatcher (one
     * query in flight), each query reading the store when it is sent and answering when the test releases it.
     */
    function batching(inner: SqliteStore) {
      const held: (() => void)[] = [];
      let holding = false;
      const read = <K, V>(one: (k: K) => Promise<V>) => (keys: K[]): Promise<V[]> => {
        const snapshot = Promise.all(keys.map(one)); // SqliteStore reads synchronously: this is the statement's snapshot
        return holding ? new Promise((r) => held.push(() => r(snapshot))) : snapshot;
      };
      const options = { maxInFlight: 1, maxBatch: 100 };
      const responses = new LookupBatcher(read((k: [string, string, HashName]) => inner.getResponse(...k)), (k) => k.join('\0'), options);
      const certificates = new LookupBatcher(read((k: [string, string]) => inner.getCertificate(...k)), (k) => k.join('\0'), options);
      const store = new Proxy(inner, {
        get(target, prop, receiver) {
          if (prop === 'getResponseNow') return undefined;
          if (prop === 'getResponse') return (ca: string, serial: string, hash: HashName) => responses.lookup([ca, serial, hash]);
          if (prop === 'getCertificate') return (ca: string, serial: string) => certificates.lookup([ca, serial]);
          const value = Reflect.get(target, prop, receiver) as unknown;
          return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
        },
      });
      return {
        store: store as Store,
        responses,
        hold: () => (holding = true),
        release: () => {
          holding = false;
          held.splice(0).forEach((r) => r());
        },
      };
    }

    it('a request arriving after a revocation committed, while a lookup for the same certificate is in flight, is answered revoked', async () => {
      const db = batching(responder);
      const pg = buildChain(db.store, authority, clock, { cache: false });
      await pg.follower.start();
      try {
        assert.equal(statusOf((await ask([0], pg)).der), 0);
        await turn(); // stored on demand
        assert.equal(await stored('1001'), 0);
        db.hold();
        const before = ask([0], pg);
        await turn(); // the turn ends: the lookup goes out, its snapshot holds the stored good response
        assert.equal(db.responses.stats.queries, 2);
        await revoke('1001'); // commits, deleting the stored response
        await pg.follower.apply(); // and this responder has heard of it (NOTIFY)
        const after = ask([0], pg);
        await turn();
        assert.equal(db.responses.stats.queries, 2, 'the later lookup waits: it does not share the query in flight');
        db.release();
        assert.equal(statusOf((await before).der), 0, 'asked before the revocation: the old answer is allowed');
        assert.equal(statusOf((await after).der), 1, 'asked after it: revoked');
        assert.equal(db.responses.stats.queries, 3);
      } finally {
        pg.follower.close();
      }
    });
  });
});
