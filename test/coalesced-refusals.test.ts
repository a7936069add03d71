// A request coalesced onto another's signature (single-flight, or a stored response produced on demand) never gets
// the refusal that was meant for the other request's client: the daemon's chain, a real limiter, software keys.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { FakeClock } from '../src/clock';
import { LimiterRejectedError, SigningLimiter } from '../src/signing/signing-limiter';
import { parseOcspRequest } from '../src/ocsp/request';
import { makeAuthority, PreProduction } from '../src/source/authority';
import type { OcspResponse } from '../src/source/source';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { GateSigner } from './support/gate-signer';
import { tick } from './support/limiter-load';
import { opensslRequest } from './support/openssl';
import { buildChain } from './support/serving-chain';
import { softwarePki, SoftwarePki } from './support/software-pki';

const HOUR = 3_600_000;

function certStatus(der: Buffer): number {
  const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
  return basic.tbsResponseData.responses[0]!.certStatus.idBlock.tagNumber;
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 1000 && !ok(); i++) await tick();
  assert.ok(ok(), what);
}

function settle<T>(p: Promise<T>) {
  return p.then((value) => ({ value, error: undefined }), (error: unknown) => ({ value: undefined, error }));
}

describe('coalesced requests and a flooding client\'s refusals', () => {
  let pki: SoftwarePki;
  before(async () => {
    pki = await softwarePki();
  });

  for (const pre of [false, true]) {
    it(`a quiet client coalesced onto a flooder's refused request is signed for (${pre ? 'stored responses, produced on demand' : 'live signing, single-flight'})`, async () => {
      const clock = new FakeClock(new Date(Math.floor(Date.now() / 1000) * 1000));
      const store = new SqliteStore(':memory:', clock);
      await store.putCertificates(['1001', '1002', '1003'].map((serial) => ({ ca: 'unit', serial, status: 'good' as const })));
      // One signature at a time, two waiting, half of the queue per client: the flooder's share is one waiting request.
      const limiter = new SigningLimiter({ name: 'token', ratePerSecond: 0, burst: 1, maxConcurrent: 1, maxQueue: 2, queueTimeoutMs: 10_000, clientShare: 0.5, clock });
      const signer = new GateSigner(pki.responderSigner);
      const preProduction: PreProduction = {
        enabled: pre, storeOnDemand: pre, onIssuance: false, onRevocation: false, hashes: ['sha1'], finalResponsesBeforeMs: undefined,
      };
      const authority = makeAuthority({
        name: 'unit', caCert: pki.ca, signerCert: pki.responder, signer, limiters: [limiter], responderId: 'byKey', validityMs: HOUR, preProduction,
      });
      const { chain, follower } = buildChain(store, authority, clock);
      await follower.start();
      const ask = (leaf: number, client: string, nonce = false): Promise<OcspResponse> =>
        chain.response(parseOcspRequest(opensslRequest(pki.files.ca, [pki.files.leaves[leaf]!], { nonce }), { maxCertIds: 10 }), { lane: 'live', client });
      try {
        signer.hold();
        // The flooder: one signature in flight, one waiting (its whole share of the queue).
        const inFlight = settle(ask(0, 'flooder', true));
        await signer.until(1);
        const waiting = settle(ask(1, 'flooder', true));
        await until('the flooder\'s second request waits for a permit', () => limiter.queueDepth('live') === 1);
        // Its next request is refused for its share; the same request from a quiet client, and again from the
        // flooder, arrive while that refusal is on its way and are coalesced onto it.
        const refused = settle(ask(2, 'flooder'));
        const quiet = settle(ask(2, 'quiet'));
        const again = settle(ask(2, 'flooder'));
        assert.equal(((await refused).error as LimiterRejectedError | undefined)?.reason, 'client_share');
        signer.release();
        const q = await quiet;
        assert.equal(q.error, undefined, `the quiet client got ${String(q.error)}`);
        assert.equal(certStatus(q.value!.der), 0, 'good');
        assert.equal(((await again).error as LimiterRejectedError | undefined)?.reason, 'client_share', 'the flooder\'s own coalesced request shares its refusal');
        assert.equal((await inFlight).error, undefined);
        assert.equal((await waiting).error, undefined);
        assert.equal(limiter.inFlightCount, 0);
      } finally {
        signer.release();
        follower.close();
        await store.close();
      }
    });
  }
});
