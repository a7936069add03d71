// Under compliance: cabf no response is served past BR 4.9.9's update time (source/usable-until.ts): not from memory,
// the request memo or the store, and HTTP caches are not told to keep it longer; past it a request gets what a miss
// gets. Without the profile, until nextUpdate as before. On a fake clock, with the chain the daemon wires.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../src/clock';
import { createApp } from '../src/http/app';
import { cacheHeaders, servedFrom } from '../src/http/caching';
import { trustedProxyList } from '../src/http/client-address';
import { createOcspHandler } from '../src/http/ocsp-handler';
import { RequestMemo } from '../src/http/request-memo';
import { createHttpServer } from '../src/http/server';
import { parseOcspRequest } from '../src/ocsp/request';
import { CountingSigner } from './support/counting-signer';
import { type Authority, makeAuthority } from '../src/source/authority';
import type { ResponseProducer } from '../src/source/response-producer';
import { usableUntilMs } from '../src/source/usable-until';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { opensslRequest } from './support/openssl';
import { buildChain, type TestChain } from './support/serving-chain';
import { softwarePki, type SoftwarePki } from './support/software-pki';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** validity 1d: an interval of 1d1s, so the update is due 8 hours before nextUpdate, 16 hours after thisUpdate. */
const DEADLINE = 16 * HOUR;
const ctx = { lane: 'live' as const };

const tick = () => new Promise((r) => setImmediate(r));

describe('usableUntilMs: nextUpdate, or the update time BR 4.9.9 requires under cabf', () => {
  const T = Date.parse('2026-03-01T00:00:00Z');
  for (const [compliance, validity, expected] of [
    ['none', DAY, T + DAY],
    ['cabf', DAY, T + 16 * HOUR], // 8 hours before nextUpdate
    ['cabf', 7 * DAY, T + 4 * DAY], // no later than 4 days after thisUpdate
    ['cabf', 8 * HOUR, T + 4 * HOUR - 500], // under 16 hours: half the interval (8h1s) before nextUpdate
  ] as const) {
    it(`${compliance}, validity ${validity / HOUR}h: thisUpdate + ${(expected - T) / 1000}s`, () => {
      assert.equal(usableUntilMs({ compliance }, T, T + validity), expected);
    });
  }
});

describe('serving under compliance: cabf (validity 1d: updated by thisUpdate + 16h)', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let store: SqliteStore;
  let signer: CountingSigner;
  let authority: Authority;
  let chain: TestChain['chain'];
  let producer: ResponseProducer;
  let t0: number;
  const request = (leaves = [0]) => parseOcspRequest(opensslRequest(pki.files.ca, leaves.map((i) => pki.files.leaves[i]!)), { maxCertIds: 10 });
  const ask = (leaves = [0]) => chain.response(request(leaves), ctx);

  async function build(compliance: 'none' | 'cabf', o: { cache?: boolean } = {}): Promise<void> {
    authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, responderId: 'byKey', validityMs: DAY, compliance,
      preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: false, hashes: ['sha1'], finalResponsesBeforeMs: undefined },
    });
    const built = buildChain(store, authority, clock, o);
    ({ chain, producer } = built);
    await built.follower.start();
  }

  before(async () => {
    pki = await softwarePki();
  });

  beforeEach(async () => {
    t0 = Math.floor(Date.now() / 1000) * 1000;
    clock = new FakeClock(new Date(t0));
    store = new SqliteStore(':memory:', clock);
    await store.putCertificates([
      { ca: 'unit', serial: '1001', status: 'good' },
      { ca: 'unit', serial: '1002', status: 'good' },
    ]);
    signer = new CountingSigner(pki.responderSigner);
  });

  it('memory: served at thisUpdate + 16h - 1s; at + 16h + 1s it is not, and a fresh one is signed and stored', async () => {
    await build('cabf');
    const first = await ask();
    assert.equal(first.thisUpdate.getTime(), t0);
    clock.advance(DEADLINE - 1000);
    const held = await ask();
    assert.equal(held.source, 'cache');
    assert.ok(held.der.equals(first.der));
    assert.ok(chain.hot!(request())?.served()?.der.equals(first.der), 'in the tick its request arrived');
    assert.equal(signer.count, 1);

    clock.advance(2000);
    assert.equal(chain.hot!(request())?.served(), undefined, 'memory no longer answers');
    const fresh = await ask();
    assert.equal(fresh.source, 'live');
    assert.equal(signer.count, 2);
    assert.equal(fresh.thisUpdate.getTime(), t0 + DEADLINE + 1000);
    assert.equal(fresh.usableUntilMs, t0 + 2 * DEADLINE + 1000);
    await tick(); // stored on demand, in the background
    assert.ok((await store.getResponse('unit', '1001', 'sha1'))!.der.equals(fresh.der));
    assert.ok(chain.hot!(request())?.served()?.der.equals(fresh.der), 'the fresh one is held in memory');
  });

  it('memory: past the update time, the newer response the pre-signer stored is served, nothing signed', async () => {
    await build('cabf');
    const first = await ask();
    clock.advance(10 * HOUR);
    const rec = (await store.getCertificate('unit', '1001'))!;
    const newer = await producer.produce(authority, rec, 'sha1', { lane: 'presign' });
    await producer.store([newer]);
    clock.advance(6 * HOUR - 1000);
    assert.ok((await ask()).der.equals(first.der), 'until its update time, memory may still serve the first');
    clock.advance(2000);
    const r = await ask();
    assert.equal(r.source, 'store');
    assert.ok(r.der.equals(newer.der));
    assert.equal(signer.count, 2, 'the first and the pre-signed one');
  });

  it('store: past its update time a stored response is not served (in the tick nor after); one is signed and stored', async () => {
    await build('cabf', { cache: false });
    const first = await ask();
    await tick();
    clock.advance(DEADLINE - 1000);
    assert.ok(chain.hot!(request())?.served()?.der.equals(first.der));
    const stored = await ask();
    assert.equal(stored.source, 'store');
    assert.ok(stored.der.equals(first.der));

    clock.advance(2000);
    assert.equal(chain.hot!(request())?.served(), undefined);
    const fresh = await ask();
    assert.equal(fresh.source, 'live');
    assert.equal(signer.count, 2);
    await tick();
    assert.ok((await store.getResponse('unit', '1001', 'sha1'))!.der.equals(fresh.der));
    assert.equal((await ask()).source, 'store');
  });

  it('without the profile, a response is served until its nextUpdate (RFC 6960, RFC 9919)', async () => {
    await build('none');
    const first = await ask();
    clock.advance(DAY - 1000);
    const held = await ask();
    assert.equal(held.source, 'cache');
    assert.ok(held.der.equals(first.der));
    const headers = cacheHeaders(servedFrom(held), clock.now().getTime());
    assert.equal(headers[headers.indexOf('Expires') + 1], new Date(t0 + DAY).toUTCString(), 'Expires: nextUpdate');
    clock.advance(2000);
    assert.equal((await ask()).source, 'live');
    assert.equal(signer.count, 2);
  });

  describe('over HTTP, with the request memo', () => {
    let server: Server;
    let base: string;

    beforeEach(async () => {
      await build('cabf');
      const ocsp = createOcspHandler({
        source: chain, limits: { maxCertIds: 5 }, bodyLimit: 4096, responseTimeoutMs: 5000, logger: pino({ level: 'silent' }),
        clock, trustedProxies: trustedProxyList([]), memo: new RequestMemo(1 << 20),
      });
      server = createHttpServer(ocsp, createApp({ ready: async () => true, logger: pino({ level: 'silent' }) }));
      server.listen(0, '127.0.0.1');
      await new Promise((r) => server.once('listening', r));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterEach(() => new Promise<void>((r) => server.close(() => r())));

    const get = async (leaves = [0]) => {
      const der = opensslRequest(pki.files.ca, leaves.map((i) => pki.files.leaves[i]!));
      const r = await fetch(`${base}/${encodeURIComponent(der.toString('base64'))}`, { signal: AbortSignal.timeout(5000) });
      assert.equal(r.status, 200);
      await r.arrayBuffer();
      const maxAge = Number(/^max-age=(\d+), public/.exec(r.headers.get('cache-control') ?? '')![1]);
      return { etag: r.headers.get('etag'), expires: r.headers.get('expires'), maxAge };
    };
    /** max-age counted from the end of the current second never reaches past the update time. */
    const within = (h: { maxAge: number }, deadlineMs: number) => {
      const second = Math.floor(clock.now().getTime() / 1000) * 1000;
      assert.ok(second + 999 + h.maxAge * 1000 <= deadlineMs, `max-age ${h.maxAge} reaches past the update time`);
    };

    it('max-age and Expires stop at the update time; past it the remembered request gets the fresh response', async () => {
      const deadline = t0 + DEADLINE;
      const first = await get();
      assert.equal(first.expires, new Date(deadline).toUTCString());
      assert.equal(first.maxAge, DEADLINE / 1000 - 1);
      within(first, deadline);
      clock.advance(DEADLINE - 1000);
      const late = await get(); // remembered by its bytes: answered from memory
      assert.equal(late.etag, first.etag);
      assert.equal(late.maxAge, 0);
      assert.equal(late.expires, first.expires);

      clock.advance(2000);
      const fresh = await get();
      assert.notEqual(fresh.etag, first.etag);
      assert.equal(fresh.expires, new Date(deadline + 1000 + DEADLINE).toUTCString());
      within(fresh, deadline + 1000 + DEADLINE);
      assert.equal(signer.count, 2);
    });

    it('a response signed live for two certificates: the same bound', async () => {
      const h = await get([0, 1]);
      assert.equal(h.expires, new Date(t0 + DEADLINE).toUTCString());
      within(h, t0 + DEADLINE);
    });
  });
});
