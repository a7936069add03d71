// Single-flight: concurrent identical requests share one signature; nonces and different CertIDs do not.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CertIdRequest } from '../src/ocsp/request';
import type { Authority } from '../src/source/authority';
import { SingleFlight } from '../src/source/single-flight';
import type { OcspResponse, ResolvedRequest, Source } from '../src/source/source';

/** Counts calls and answers after a delay, like a signer would. */
class SlowCountingSource implements Source {
  calls = 0;
  async response(): Promise<OcspResponse> {
    this.calls++;
    await new Promise((r) => setTimeout(r, 20));
    const t = new Date();
    return { der: Buffer.from([this.calls]), producedAt: t, thisUpdate: t, nextUpdate: t };
  }
}

const authority = { name: 'ca' } as Authority;
const certId = (serial: string, hash: 'sha1' | 'sha256' = 'sha1') =>
  ({ hash, serial, issuerNameHash: Buffer.alloc(4, 1), issuerKeyHash: Buffer.alloc(4, 2) }) as CertIdRequest;
const req = (ids: CertIdRequest[], nonce?: Buffer): ResolvedRequest => ({ authority, certIds: ids, ...(nonce ? { nonce } : {}) });
const ctx = { lane: 'live' as const };

describe('SingleFlight', () => {
  it('shares one call among concurrent identical requests, then forgets it', async () => {
    const inner = new SlowCountingSource();
    const sf = new SingleFlight(inner);
    const results = await Promise.all(Array.from({ length: 10 }, () => sf.response(req([certId('1')]), ctx)));
    assert.equal(inner.calls, 1);
    assert.ok(results.every((r) => r === results[0]));
    assert.equal(sf.pending, 0);
    await sf.response(req([certId('1')]), ctx);
    assert.equal(inner.calls, 2, 'a later request signs again');
  });

  it('does not share between different serials, hash algorithms or nonce requests', async () => {
    const inner = new SlowCountingSource();
    const sf = new SingleFlight(inner);
    await Promise.all([
      sf.response(req([certId('1')]), ctx),
      sf.response(req([certId('2')]), ctx),
      sf.response(req([certId('1', 'sha256')]), ctx),
      sf.response(req([certId('1')], Buffer.from('n1')), ctx),
      sf.response(req([certId('1')], Buffer.from('n1')), ctx),
    ]);
    assert.equal(inner.calls, 5);
  });

  it('passes a failure to every sharer and does not cache it', async () => {
    let calls = 0;
    const failing: Source = { response: async () => { calls++; await new Promise((r) => setTimeout(r, 10)); throw new Error('hsm down'); } };
    const sf = new SingleFlight(failing);
    const all = await Promise.allSettled([sf.response(req([certId('9')]), ctx), sf.response(req([certId('9')]), ctx)]);
    assert.ok(all.every((r) => r.status === 'rejected'));
    assert.equal(calls, 1);
    await assert.rejects(sf.response(req([certId('9')]), ctx));
    assert.equal(calls, 2);
  });

  it('passes an HSM failure to sharers from other clients too: only a limiter\'s refusal is one client\'s own', async () => {
    let calls = 0;
    const failing: Source = { response: async () => { calls++; await new Promise((r) => setTimeout(r, 10)); throw new Error('hsm down'); } };
    const sf = new SingleFlight(failing);
    const all = await Promise.allSettled(['a', 'b', 'c'].map((client) => sf.response(req([certId('9')]), { lane: 'live', client })));
    assert.ok(all.every((r) => r.status === 'rejected' && (r.reason as Error).message === 'hsm down'));
    assert.equal(calls, 1);
  });
});
