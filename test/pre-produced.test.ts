// The serving rules for pre-produced responses (RFC 6960 section 2.5, EJBCA's semantics), on a fake clock:
// memory cache -> stored responses -> live signer, the change follower, the pre-signer and cleanup.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { before, beforeEach, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { FakeClock } from '../src/clock';
import { CountingSigner } from './support/counting-signer';
import { OID } from '../src/ocsp/oids';
import { parseOcspRequest } from '../src/ocsp/request';
import { cleanup } from '../src/presign/cleanup';
import { PreSigner } from '../src/presign/pre-signer';
import { Authority, makeAuthority, PreProduction } from '../src/source/authority';
import { ChangeFollower } from '../src/source/change-follower';
import { MemoryCache } from '../src/source/memory-cache';
import { FINAL_NEXT_UPDATE, ResponseProducer } from '../src/source/response-producer';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { openssl, opensslRequest, writeTemp } from './support/openssl';
import { softwarePki, SoftwarePki } from './support/software-pki';
import { buildChain, quiet, TestChain } from './support/serving-chain';
import { tempDir } from './support/temp';

const HOUR = 3_600_000;
const limits = { maxCertIds: 10 };
const ctx = { lane: 'live' as const };

interface Fields {
  status: number;
  producedAt: Date;
  nextUpdate: Date | undefined;
  hashOid: string;
  nonce: boolean;
  serials: string[];
}

function fields(der: Buffer): Fields {
  const ocsp = pkijs.OCSPResponse.fromBER(der);
  const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
  const d = basic.tbsResponseData;
  const r = d.responses[0]!;
  return {
    status: r.certStatus.idBlock.tagNumber,
    producedAt: d.producedAt,
    nextUpdate: r.nextUpdate,
    hashOid: r.certID.hashAlgorithm.algorithmId,
    nonce: !!d.responseExtensions?.some((e) => e.extnID === OID.ocspNonce),
    serials: d.responses.map((x) => Buffer.from(x.certID.serialNumber.valueBlock.valueHexView).toString('hex')),
  };
}

describe('pre-produced responses', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let store: SqliteStore;
  let signer: CountingSigner;
  let authority: Authority;
  let cache: MemoryCache;
  let chain: TestChain['chain'];
  let follower: ChangeFollower;
  let producer: ResponseProducer;
  const request = (leaves: number[], o: { sha256?: boolean; nonce?: boolean } = {}) =>
    parseOcspRequest(opensslRequest(pki.files.ca, leaves.map((i) => pki.files.leaves[i]!), o), limits);
  const ask = async (leaves: number[], o: { sha256?: boolean; nonce?: boolean } = {}) => chain.response(request(leaves, o), ctx);

  function build(pre: Partial<PreProduction>): void {
    const preProduction: PreProduction = {
      enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: true, hashes: ['sha1', 'sha256'], finalResponsesBeforeMs: undefined, ...pre,
    };
    authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, responderId: 'byKey', validityMs: HOUR, preProduction,
    });
    const built = buildChain(store, authority, clock);
    ({ producer, follower, chain } = built);
    cache = built.cache!;
  }

  before(async () => {
    pki = await softwarePki();
  });

  beforeEach(async () => {
    clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
    store = new SqliteStore(':memory:', clock);
    await store.putCertificates([
      { ca: 'unit', serial: '1001', status: 'good' },
      { ca: 'unit', serial: '1002', status: 'good' },
    ]);
    signer = new CountingSigner(pki.responderSigner);
    build({});
    await follower.start();
  });

  it('stores an on-demand response per hash and serves it again without signing; openssl verifies both', async () => {
    const first = await ask([0]);
    const again = await ask([0]);
    assert.equal(signer.count, 1);
    assert.ok(first.der.equals(again.der));
    const sha256 = await ask([0], { sha256: true });
    assert.equal(signer.count, 2, 'a SHA-256 client gets its own response');
    assert.equal(fields(sha256.der).hashOid, OID.sha256);
    await new Promise((r) => setImmediate(r)); // the write is in the background
    assert.ok((await store.getResponse('unit', '1001', 'sha1'))!.der.equals(first.der));
    assert.ok((await store.getResponse('unit', '1001', 'sha256'))!.der.equals(sha256.der));
    for (const [r, sha] of [[first, false], [sha256, true]] as const) {
      const out = openssl(['ocsp', '-respin', writeTemp('r.der', r.der), ...(sha ? ['-sha256'] : []), '-issuer', pki.files.ca, '-cert', pki.files.leaves[0]!, '-CAfile', pki.files.ca]);
      assert.match(out, /Response verify OK/);
      assert.match(out, /: good/);
    }
  });

  it('answers a nonce request with the pre-produced response, without the nonce', async () => {
    const r = await ask([0], { nonce: true });
    assert.equal(fields(r.der).nonce, false);
    const again = await ask([0], { nonce: true });
    assert.ok(r.der.equals(again.der));
    assert.equal(signer.count, 1);
  });

  it('serves the store after a restart (empty cache), and never a stored response past its nextUpdate', async () => {
    const first = await ask([0]);
    await new Promise((r) => setImmediate(r));
    build({}); // a fresh cache, as after a restart
    assert.ok((await ask([0])).der.equals(first.der));
    assert.equal(signer.count, 1);
    clock.advance(HOUR); // nextUpdate reached: neither cache nor store may serve it
    const renewed = await ask([0]);
    assert.equal(signer.count, 2);
    assert.equal(fields(renewed.der).producedAt.getTime(), clock.now().getTime());
    await new Promise((r) => setImmediate(r));
    assert.equal((await store.getResponse('unit', '1001', 'sha1'))!.producedAt.getTime(), clock.now().getTime(), 'the new one was stored');
  });

  it('never persists multi-certificate responses, unknown serials, or anything when pre-production or store-on-demand is off', async () => {
    const multi = await ask([0, 1]);
    assert.deepEqual(fields(multi.der).serials, ['1001', '1002']);
    await ask([2]); // serial 1003: unknown
    await new Promise((r) => setImmediate(r));
    assert.equal(await store.getResponse('unit', '1001', 'sha1'), undefined);
    assert.equal(await store.getResponse('unit', '1003', 'sha1'), undefined);
    await ask([2]);
    assert.equal(signer.count, 3, 'unknown serials are signed live each time');

    build({ storeOnDemand: false });
    const a = await ask([0]);
    await new Promise((r) => setImmediate(r));
    assert.equal(await store.getResponse('unit', '1001', 'sha1'), undefined);
    assert.equal(fields(a.der).nonce, false);

    build({ enabled: false });
    const live = await ask([0], { nonce: true });
    assert.equal(fields(live.der).nonce, true, 'pre-production off: live, nonce echoed');
    const live2 = await ask([0]);
    assert.equal(signer.count, 6, 'pre-production off: nothing cached or stored');
    assert.notEqual(live2.der, live.der);
  });

  it('a revocation recorded by another connection is never answered good: cache dropped, new response produced', async () => {
    await ask([1]);
    await new Promise((r) => setImmediate(r));
    await store.revoke('unit', '1002', new Date(clock.now().getTime() - 60_000), 'keyCompromise');
    await follower.apply(); // the daemon's watch does this within 250 ms; requests check first anyway
    const r = await ask([1]);
    assert.equal(fields(r.der).status, 1, 'revoked');
    // onRevocation: responses were produced for every configured hash and stored.
    const deadline = Date.now() + 5000;
    while (!(await store.getResponse('unit', '1002', 'sha256')) && Date.now() < deadline) await new Promise((res) => setTimeout(res, 10));
    assert.equal(fields((await store.getResponse('unit', '1002', 'sha256'))!.der).status, 1);
  });

  it('the synchronous hit path, and answers remembered by request bytes, never answer from the cache once another process recorded a revocation', async () => {
    const file = join(tempDir('hot'), 'ocsp-hsm.sqlite');
    follower.close();
    store = new SqliteStore(file, clock);
    const cli = new SqliteStore(file, clock);
    try {
      await store.putCertificates([{ ca: 'unit', serial: '1002', status: 'good' }]);
      build({});
      await follower.start();
      await ask([1]);
      // What the HTTP edge's request memo keeps: the HotAnswer, asked again for each repeated request.
      const remembered = chain.hot!(request([1]))!;
      assert.equal(fields(remembered.served()?.der!).status, 0, 'hot and good');
      await cli.revoke('unit', '1002', new Date(clock.now().getTime() - 60_000), 'keyCompromise');
      await new Promise((r) => setImmediate(r)); // a new event-loop turn, as for the next request
      assert.equal(chain.hot!(request([1]))!.served()?.der, undefined, 'not answered from memory while the change is unapplied');
      assert.equal(remembered.served()?.der, undefined, 'nor by the remembered answer');
      assert.equal(fields((await ask([1])).der).status, 1, 'the asynchronous path applies it first: revoked');
      assert.equal(fields(chain.hot!(request([1]))!.served()?.der!).status, 1, 'and the cache then holds the revoked answer');
      assert.equal(fields(remembered.served()?.der!).status, 1, 'which the remembered answer serves');
    } finally {
      follower.close();
      await cli.close();
      await store.close();
    }
  });

  it('cache off: a stored response is answered synchronously from the store, which a revocation by another connection stops at the very next read', async () => {
    const file = join(tempDir('store-hit'), 'ocsp-hsm.sqlite');
    follower.close();
    store = new SqliteStore(file, clock);
    const cli = new SqliteStore(file, clock);
    try {
      await store.putCertificates([{ ca: 'unit', serial: '1001', status: 'good' }, { ca: 'unit', serial: '1002', status: 'good' }]);
      ({ producer, follower, chain } = buildChain(store, authority, clock, { cache: false }));
      await follower.start();
      assert.equal(chain.hot!(request([1]))!.served(), undefined, 'nothing stored yet: the asynchronous path produces it');
      const first = await ask([1]);
      await new Promise((r) => setImmediate(r)); // stored on demand, in the background
      const hit = chain.hot!(request([1]))!;
      assert.equal(hit.source, 'store', 'counted as a store answer, not a cache one');
      assert.ok(hit.served()!.der.equals(first.der));
      assert.equal(hit.served()!.nextUpdateMs, fields(first.der).nextUpdate!.getTime());
      assert.equal(chain.hot!(request([1], { sha256: true }))!.served(), undefined, 'another hash: its own response, none stored yet');
      assert.equal(signer.count, 1);
      // No event-loop turn in between: the read after the commit is the store as it is now.
      await cli.revoke('unit', '1002', new Date(clock.now().getTime() - 60_000), 'keyCompromise');
      assert.equal(hit.served(), undefined, 'the revocation deleted the stored response: nothing old is served');
      assert.equal(fields((await ask([1])).der).status, 1, 'the asynchronous path signs: revoked');
      // Past nextUpdate, or signed by a signer this CA no longer uses: never served from here either.
      await ask([0]);
      await new Promise((r) => setImmediate(r));
      assert.ok(chain.hot!(request([0]))!.served());
      const now = clock.now();
      clock.set(new Date(now.getTime() + HOUR));
      assert.equal(chain.hot!(request([0]))!.served(), undefined, 'expired');
      clock.set(now);
      const stored = (await store.getResponse('unit', '1001', 'sha1'))!;
      assert.deepEqual(await cli.putResponses([{ ...stored, producedAt: new Date(stored.producedAt.getTime() + 1), signer: 'another signer' }]), { stored: 1, skippedFinal: 0, stale: 0 });
      assert.equal(chain.hot!(request([0]))!.served(), undefined, 'another signer\'s response');
    } finally {
      follower.close();
      await cli.close();
      await store.close();
    }
  });

  it('a store that reads only asynchronously (PostgreSQL), cache off: the chain offers no hot answer, so the issuer is resolved once per request', async () => {
    follower.close();
    // The SQLite store without its synchronous read: what the chain sees of a PostgreSQL store.
    const asyncOnly = new Proxy(store, {
      get(target, prop) {
        if (prop === 'getResponseNow') return undefined;
        const value = Reflect.get(target, prop, target) as unknown;
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const built = [
      buildChain(asyncOnly, authority, clock, { cache: false }),
      buildChain(asyncOnly, authority, clock, { cache: true }),
      buildChain(store, authority, clock, { cache: false }),
    ];
    try {
      assert.equal(built[0]!.chain.hot, undefined, 'nothing can answer in the tick: no hot step at all');
      assert.equal(built[0]!.nonces.hot, undefined);
      assert.equal(typeof built[1]!.chain.hot, 'function', 'the memory cache can');
      assert.equal(typeof built[2]!.chain.hot, 'function', 'a synchronous store can');
      await built[0]!.follower.start();
      assert.equal(fields((await built[0]!.chain.response(request([0]), ctx)).der).status, 0, 'and the asynchronous path answers');
    } finally {
      for (const b of built) b.follower.close();
    }
  });

  it('pre-signer: every response is stored when signatures finish out of order while batches are being stored', async () => {
    const serials = Array.from({ length: 60 }, (_, i) => (0x3000 + i).toString(16));
    await store.putCertificates(serials.map((serial) => ({ ca: 'unit', serial, status: 'good' as const })));
    signer.jitter = true;
    const ps = new PreSigner(store, [authority], producer, clock, { refreshAfter: 0.5, concurrency: 8, batchSize: 5 }, quiet);
    const r = await ps.run();
    signer.jitter = false;
    assert.deepEqual({ stored: r.stored, failed: r.failed, done: r.done }, { stored: r.total, failed: 0, done: r.total });
    for (const serial of serials) assert.ok(await store.getResponse('unit', serial, 'sha1'), `serial ${serial} has a stored response`);
    assert.equal((await ps.run()).total, 0, 'nothing left due');
  });

  it('pre-signer: signs what is missing or due, nothing else, and only final responses inside the final window', async () => {
    await store.putCertificates(Array.from({ length: 50 }, (_, i) => ({ ca: 'unit', serial: (0x2000 + i).toString(16), status: 'good' as const })));
    const ps = new PreSigner(store, [authority], producer, clock, { refreshAfter: 0.5, concurrency: 4, batchSize: 7 }, quiet);
    const r1 = await ps.run();
    assert.deepEqual({ total: r1.total, stored: r1.stored, failed: r1.failed }, { total: 104, stored: 104, failed: 0 });
    assert.equal((await ps.run()).stored, 0, 'nothing due');
    clock.advance(HOUR / 2 + 1000); // half the validity has passed: due for refresh
    assert.equal((await ps.run()).stored, 104);
    clock.advance(1000);
    const all = await ps.run({ all: true });
    assert.equal(all.stored, 104, '--all re-signs everything');
    assert.equal(await cleanup(store, clock).then((c) => c.responses), 208, 'cleanup keeps the latest per certificate and hash');

    build({ finalResponsesBeforeMs: 100 * 365 * 86_400_000 });
    const ps2 = new PreSigner(store, [authority], producer, clock, { refreshAfter: 0.5, concurrency: 4, batchSize: 50 }, quiet);
    const f = await ps2.run();
    assert.equal(f.final, 104);
    const stored = (await store.getResponse('unit', '2001', 'sha1'))!;
    assert.equal(stored.final, true);
    assert.deepEqual(fields(stored.der).nextUpdate, FINAL_NEXT_UPDATE);
    clock.advance(30 * 86_400_000);
    assert.equal((await ps2.run({ all: true })).stored, 0, 'nothing newer is stored after a final response');
    assert.ok((await ask([0])).der.equals((await store.getResponse('unit', '1001', 'sha1'))!.der), 'the final response is served');
  });

  it('pre-signer: a certificate profile\'s shorter validity is refreshed at half of its own, not of the CA\'s', async () => {
    authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, responderId: 'byKey', validityMs: HOUR,
      preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: true, hashes: ['sha1'], finalResponsesBeforeMs: undefined },
      policy: { profileValidityMs: new Map([['short', 10 * 60_000]]) },
    });
    ({ producer } = buildChain(store, authority, clock));
    await store.putCertificates([{ ca: 'unit', serial: '4001', status: 'good', profile: 'short' }]);
    const ps = new PreSigner(store, [authority], producer, clock, { refreshAfter: 0.5, concurrency: 4, batchSize: 10 }, quiet);
    assert.equal((await ps.run()).stored, 3);
    const first = (await store.getResponse('unit', '4001', 'sha1'))!;
    assert.equal(first.nextUpdate.getTime() - first.thisUpdate.getTime(), 10 * 60_000, 'signed with the profile\'s validity');
    clock.advance(4 * 60_000);
    assert.equal((await ps.run()).stored, 0, 'minute 4: nothing due');
    clock.advance(60_000 + 1000);
    const r = await ps.run();
    assert.equal(r.stored, 1, 'minute 5: the profile\'s certificate alone, long before its response expires (the CA\'s half is 30 minutes)');
    assert.ok((await store.getResponse('unit', '4001', 'sha1'))!.thisUpdate > first.thisUpdate);
  });

  it('the cache never serves past nextUpdate and respects its byte bound', async () => {
    const small = new MemoryCache(cache, clock, { maxEntries: 100, maxBytes: 1 });
    small.set('unit', '1', 'sha1', { der: Buffer.alloc(10), producedAt: clock.now(), thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + HOUR), usableUntilMs: clock.now().getTime() + HOUR, preProduced: true });
    assert.equal(small.size.entries, 0, 'an entry larger than the cache is not kept');
    // Without maxEntries the bytes alone bound it, each entry counted as its DER plus its overhead.
    const entry = (n: number) => ({ der: Buffer.alloc(600, n), producedAt: clock.now(), thisUpdate: clock.now(), nextUpdate: new Date(clock.now().getTime() + HOUR), usableUntilMs: clock.now().getTime() + HOUR, preProduced: true });
    const bytes = new MemoryCache(cache, clock, { maxBytes: 3 * 1000 });
    for (let i = 0; i < 5; i++) bytes.set('unit', String(i), 'sha1', entry(i));
    assert.deepEqual(bytes.size, { entries: 3, bytes: 3 * 1000 }, 'three entries of 600 + 400 bytes fit in 3,000');
    await ask([0]);
    clock.advance(HOUR - 1000);
    await ask([0]);
    assert.equal(signer.count, 1);
    clock.advance(1000);
    await ask([0]);
    assert.equal(signer.count, 2);
  });
});
