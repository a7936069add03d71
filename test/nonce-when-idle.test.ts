// preProduction.nonce whenIdle on the daemon's chain, a real limiter and a fake clock: a request with a nonce is
// signed live with its nonce while a permit is free at once, and gets the pre-produced answer at once while the
// limiter is busy; nonce answers are never stored nor cached; ocsp_nonce_requests_total counts both outcomes.
import assert from 'node:assert/strict';
import { afterEach, before, beforeEach, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { Registry } from 'prom-client';
import { FakeClock } from '../src/clock';
import { registerNonceMetrics } from '../src/metrics/nonce-metrics';
import { OID } from '../src/ocsp/oids';
import { OcspRequest, parseOcspRequest } from '../src/ocsp/request';
import { CountingSigner } from './support/counting-signer';
import { LimiterOptions, Permit, SigningLimiter } from '../src/signing/signing-limiter';
import { makeAuthority, NoncePolicy } from '../src/source/authority';
import type { NonceSigning } from '../src/source/nonce-signing';
import type { OcspResponse } from '../src/source/source';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { tick } from './support/limiter-load';
import { opensslRequest } from './support/openssl';
import { buildChain, TestChain } from './support/serving-chain';
import { softwarePki, SoftwarePki } from './support/software-pki';

const HOUR = 3_600_000;

/** The nonce a response echoes, or undefined. */
function echoedNonce(der: Buffer): Buffer | undefined {
  const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
  const ext = basic.tbsResponseData.responseExtensions?.find((e) => e.extnID === OID.ocspNonce);
  // extnValue: the DER OCTET STRING holding the nonce (RFC 9654 section 2.1), as the request carried it.
  return ext && Buffer.from(ext.extnValue.valueBlock.valueHexView);
}

/** Settles within a bounded number of event-loop turns, or is undefined: an answer that waited would not be here. */
async function within<T>(p: Promise<T>, turns = 50): Promise<T | undefined> {
  let value: T | undefined;
  let error: unknown;
  let done = false;
  p.then((v) => ((value = v), (done = true)), (e: unknown) => ((error = e), (done = true)));
  for (let i = 0; i < turns && !done; i++) await tick();
  if (error) throw error;
  return value;
}

describe('preProduction.nonce whenIdle', () => {
  let pki: SoftwarePki;
  let clock: FakeClock;
  let store: SqliteStore;
  let signer: CountingSigner;
  let limiter: SigningLimiter;
  let built: TestChain;
  let held: Permit[];

  before(async () => {
    pki = await softwarePki();
  });

  function build(nonce: NoncePolicy, limits: Partial<LimiterOptions> = {}): void {
    limiter = new SigningLimiter({ name: 'token', ratePerSecond: 0, burst: 1, maxConcurrent: 2, maxQueue: 8, queueTimeoutMs: 10_000, clientShare: 0.5, clock, ...limits });
    const authority = makeAuthority({
      name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, limiters: [limiter], responderId: 'byKey', validityMs: HOUR,
      preProduction: { enabled: true, storeOnDemand: true, onIssuance: false, onRevocation: false, hashes: ['sha1'], finalResponsesBeforeMs: undefined, nonce },
    });
    built = buildChain(store, authority, clock);
  }

  beforeEach(async () => {
    clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
    store = new SqliteStore(':memory:', clock);
    await store.putCertificates([{ ca: 'unit', serial: '1001', status: 'good' }]);
    signer = new CountingSigner(pki.responderSigner);
    held = [];
    build('whenIdle');
    await built.follower.start();
  });

  afterEach(async () => {
    for (const p of held) p.release();
    built.follower.close();
    await store.close();
  });

  async function rebuild(nonce: NoncePolicy, limits: Partial<LimiterOptions> = {}): Promise<void> {
    built.follower.close();
    build(nonce, limits);
    await built.follower.start();
  }

  const request = (nonce: boolean): OcspRequest => parseOcspRequest(opensslRequest(pki.files.ca, [pki.files.leaves[0]!], { nonce }), { maxCertIds: 10 });
  const ask = (req: OcspRequest, client = 'strict'): Promise<OcspResponse> => built.chain.response(req, { lane: 'live', client });
  const nonces = (): NonceSigning => built.nonces;

  /** A flooding client holds every permit (live misses signing) and has one more waiting. */
  async function flood(): Promise<void> {
    for (let i = 0; i < 2; i++) held.push(await limiter.acquire({ lane: 'live', client: 'flooder' }));
    void limiter.acquire({ lane: 'live', client: 'flooder' }).then((p) => held.push(p), () => undefined);
    await tick();
    assert.equal(limiter.inFlightCount, 2);
    assert.equal(limiter.queueDepth('live'), 1);
  }

  /** The pre-produced response, signed and stored by a request without a nonce. */
  async function preProduce(): Promise<Buffer> {
    const r = await ask(request(false));
    await tick(); // the store write is in the background
    const stored = await store.getResponse('unit', '1001', 'sha1');
    assert.ok(stored?.der.equals(r.der));
    return r.der;
  }

  it('on an idle limiter: signed live, the nonce echoed; neither stored nor cached; counted signed', async () => {
    const req = request(true);
    const r = await ask(req);
    assert.deepEqual(echoedNonce(r.der), req.nonce, 'the nonce is echoed');
    assert.equal(r.source, 'live');
    assert.equal(r.preProduced, undefined);
    assert.equal(r.httpCacheable, false);
    assert.equal(signer.count, 1);
    assert.equal(limiter.inFlightCount, 0, 'the permit was given back');
    await tick();
    assert.equal(await store.getResponse('unit', '1001', 'sha1'), undefined, 'not stored');
    assert.equal(built.cache!.size.entries, 0, 'not cached');
    // The next request without a nonce is not answered with it: a pre-produced response is signed and kept.
    const plain = await ask(request(false));
    assert.equal(echoedNonce(plain.der), undefined);
    assert.equal(signer.count, 2);
    assert.deepEqual(nonces().stats, { signed: 1, preproduced: 0 });
    // A second nonce request is signed again, its own nonce echoed: not the one before, not the cached answer.
    const again = request(true);
    assert.deepEqual(echoedNonce((await ask(again)).der), again.nonce);
    assert.equal(signer.count, 3);
    assert.deepEqual(nonces().stats, { signed: 2, preproduced: 0 });
  });

  it('on a busy limiter: the pre-produced answer at once, without waiting and without a signature', async () => {
    const preProduced = await preProduce();
    const signatures = signer.count;
    await flood();
    const r = await within(ask(request(true)));
    assert.ok(r, 'answered while the flooder still holds every permit');
    assert.ok(r.der.equals(preProduced), 'the pre-produced response');
    assert.equal(echoedNonce(r.der), undefined);
    assert.equal(signer.count, signatures, 'no signature');
    assert.equal(limiter.queueDepth('live'), 1, 'nothing queued for it');
    assert.deepEqual(nonces().stats, { signed: 0, preproduced: 1 });
    // Once the flooder is done, the next nonce request is signed for.
    for (const p of held.splice(0)) p.release();
    await tick();
    for (const p of held.splice(0)) p.release();
    const req = request(true);
    assert.deepEqual(echoedNonce((await ask(req)).der), req.nonce);
    assert.deepEqual(nonces().stats, { signed: 1, preproduced: 1 });
  });

  it('the hot path: with a permit free, no answer from memory (the request is signed); busy, the cached response', async () => {
    const preProduced = await preProduce();
    assert.equal(built.chain.hot!(request(true)), undefined, 'idle: left to response(), which signs');
    await flood();
    const hot = built.chain.hot!(request(true));
    const served = hot?.served();
    assert.ok(served?.der.equals(preProduced), 'busy: the cached pre-produced response, in the same tick');
    assert.deepEqual(nonces().stats, { signed: 0, preproduced: 1 });
    // A request without a nonce is untouched: its hot answer is the cached one whatever the limiter does.
    assert.ok(built.chain.hot!(request(false))?.served()?.der.equals(preProduced));
    assert.deepEqual(nonces().stats, { signed: 0, preproduced: 1 });
  });

  it('within the client\'s share: a client already holding its share of signatures gets the pre-produced answer', async () => {
    await rebuild('whenIdle', { maxConcurrent: 4, clientShare: 0.25 });
    const preProduced = await preProduce();
    // 'strict' holds one permit: its share of four (clientShare 0.25); two more slots are free.
    held.push(await limiter.acquire({ lane: 'live', client: 'strict' }));
    const r = await within(ask(request(true), 'strict'));
    assert.ok(r?.der.equals(preProduced));
    const other = request(true);
    assert.deepEqual(echoedNonce((await ask(other, 'other')).der), other.nonce, 'another client is signed for');
    assert.deepEqual(nonces().stats, { signed: 1, preproduced: 1 });
  });

  it('nonce: ignore (the default) answers pre-produced even when idle, and counts nothing', async () => {
    await rebuild('ignore');
    const preProduced = await preProduce();
    const r = await ask(request(true));
    assert.ok(r.der.equals(preProduced));
    assert.equal(signer.count, 1);
    assert.deepEqual(nonces().stats, { signed: 0, preproduced: 0 });
  });

  it('ocsp_nonce_requests_total counts both outcomes', async () => {
    const registry = new Registry();
    registerNonceMetrics(registry, { get stats() { return nonces().stats; } });
    const value = async (outcome: string) =>
      (await registry.getSingleMetric('ocsp_nonce_requests_total')!.get()).values.find((v) => v.labels.outcome === outcome)?.value;
    assert.equal(await value('signed'), 0, 'both series exist from the start');
    assert.equal(await value('preproduced'), 0);
    await ask(request(true));
    await preProduce();
    await flood();
    await ask(request(true));
    await ask(request(true));
    assert.equal(await value('signed'), 1);
    assert.equal(await value('preproduced'), 2);
    assert.match(await registry.metrics(), /ocsp_nonce_requests_total\{outcome="preproduced"\} 2/);
  });
});
