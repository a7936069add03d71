// GET caching headers kept per response (http/caching.ts GetHeaders): the same values a fresh computation gives,
// max-age counting down with the second and never past nextUpdate; and through the handler on a fake clock.
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { FakeClock } from '../src/clock';
import { createApp } from '../src/http/app';
import { cacheHeaders, GetHeaders } from '../src/http/caching';
import { trustedProxyList } from '../src/http/client-address';
import { createOcspHandler } from '../src/http/ocsp-handler';
import { RequestMemo } from '../src/http/request-memo';
import { createHttpServer } from '../src/http/server';
import type { OcspRequest } from '../src/ocsp/request';
import type { HotAnswer, ServedResponse, Source } from '../src/source/source';
import { buildRequest } from './support/requests';

const T0 = Date.parse('2026-06-01T12:00:00Z');
const CT = 'application/ocsp-response';

/** A response held in memory (its ETag: its bytes, quoted). */
function held(der: string, thisUpdateMs: number, nextUpdateMs: number, maxAgeMs?: number): ServedResponse {
  return { der: Buffer.from(der), thisUpdateMs, nextUpdateMs, usableUntilMs: nextUpdateMs, maxAgeMs, etag: () => `"${der}"` };
}

const maxAge = (list: string[]) => Number(/^max-age=(\d+), public, no-transform, must-revalidate$/.exec(list[list.indexOf('Cache-Control') + 1]!)![1]);

/** Asks as the handler does for repeated requests: with what it kept from the previous one. */
function keeper() {
  let kept: GetHeaders | undefined;
  return (r: ServedResponse, nowMs: number) => (kept = GetHeaders.of(CT, r, nowMs, kept)).list;
}

describe('GetHeaders: caching headers kept between requests', () => {
  it('gives what a fresh computation gives, every few milliseconds across seconds', () => {
    const of = keeper();
    const r = held('r1', T0, T0 + 3_600_000);
    const first = of(r, T0 + 250);
    for (let t = T0 + 250; t < T0 + 5_000; t += 7) {
      const kept = of(r, t);
      assert.equal(kept, first, 'the same list, brought up to date');
      assert.deepEqual(kept, GetHeaders.of(CT, r, t).list, `at +${t - T0} ms`);
      assert.deepEqual(kept.slice(4), cacheHeaders(r, t));
    }
  });

  it('redoes only max-age when the second changes', () => {
    const of = keeper();
    const r = held('r2', T0, T0 + 600_000);
    const first = of(r, T0 + 10);
    const [lm, exp, etag] = ['Last-Modified', 'Expires', 'ETag'].map((h) => first[first.indexOf(h) + 1]);
    assert.equal(of(r, T0 + 999), first);
    assert.equal(maxAge(first), 599, 'counted from the last millisecond of the second: 600 s minus 0.999');
    of(r, T0 + 1_000);
    assert.equal(maxAge(first), 598);
    of(r, T0 + 61_500);
    assert.equal(maxAge(first), 538);
    assert.deepEqual(['Last-Modified', 'Expires', 'ETag'].map((h) => first[first.indexOf(h) + 1]), [lm, exp, etag]);
    assert.equal(lm, new Date(T0).toUTCString());
    assert.equal(exp, new Date(T0 + 600_000).toUTCString());
    assert.equal(first[first.indexOf('Content-Length') + 1], '2');
  });

  it('max-age never lets a cache keep the response past nextUpdate, and stops at 0', () => {
    // nextUpdate on and off a whole second.
    for (const next of [T0 + 5_000, T0 + 5_432]) {
      const of = keeper();
      const r = held(`n${next}`, T0, next);
      for (let t = T0; t < next + 2_000; t += 13) {
        const m = maxAge(of(r, t));
        assert.ok(t + m * 1000 <= Math.max(next, t), `at +${t - T0} ms: max-age ${m} reaches past nextUpdate +${next - T0}`);
        if (t >= next - 1000) assert.equal(m, 0);
      }
    }
  });

  it("a response's own maxAge bounds max-age until nextUpdate is nearer", () => {
    const of = keeper();
    const r = held('m', T0, T0 + 7_200_000, 600_000);
    assert.equal(maxAge(of(r, T0 + 5)), 600);
    assert.equal(maxAge(of(r, T0 + 3_600_000)), 600);
    assert.equal(maxAge(of(r, T0 + 7_000_000)), 199);
  });

  it('a different response (re-signed, or another maxAge after a reload) gets its own headers; the same bytes keep theirs', () => {
    const a = held('old', T0, T0 + 60_000);
    const la = GetHeaders.of(CT, a, T0 + 2_000);
    const resigned = GetHeaders.of(CT, held('newer', T0 + 1_000, T0 + 61_000), T0 + 2_000, la);
    assert.notEqual(resigned, la);
    assert.equal(resigned.list[resigned.list.indexOf('ETag') + 1], '"newer"');
    assert.equal(resigned.list[resigned.list.indexOf('Content-Length') + 1], '5');
    assert.equal(maxAge(resigned.list), 58);
    assert.equal(la.list[la.list.indexOf('ETag') + 1], '"old"', 'the old ones are left as they were');
    assert.equal(maxAge(la.list), 57);
    const reloaded = GetHeaders.of(CT, held('old', T0, T0 + 60_000, 10_000), T0 + 2_000, la);
    assert.notEqual(reloaded, la);
    assert.equal(maxAge(reloaded.list), 10);
    // The same response cached again (evicted and read back from the store): the kept headers serve.
    assert.equal(GetHeaders.of(CT, held('old', T0, T0 + 60_000), T0 + 2_000, la), la);
  });
});

/** Holds one answer per serial in "memory", as the memory cache does. */
class HeldSource implements Source<OcspRequest> {
  held = new Map<string, ServedResponse>();
  hot(req: OcspRequest): HotAnswer {
    return { served: () => this.held.get(req.certIds[0]!.serial) };
  }
  async response(): Promise<never> {
    throw new Error('only held answers in this test');
  }
}

describe('GET caching headers through the handler, on a fake clock', () => {
  let server: Server;
  let base: string;
  const clock = new FakeClock(new Date(T0 + 200));
  const source = new HeldSource();

  before(async () => {
    const ocsp = createOcspHandler({
      source, limits: { maxCertIds: 5 }, bodyLimit: 4096, responseTimeoutMs: 1000, logger: pino({ level: 'silent' }),
      clock, trustedProxies: trustedProxyList([]), memo: new RequestMemo(1 << 20),
    });
    server = createHttpServer(ocsp, createApp({ ready: async () => true, logger: pino({ level: 'silent' }) }));
    server.listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));

  const get = async (der: Buffer, headers: Record<string, string> = {}) => {
    const r = await fetch(`${base}/${encodeURIComponent(der.toString('base64'))}`, { headers, signal: AbortSignal.timeout(5000) });
    return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
  };
  const maxAgeOf = (h: Headers) => Number(/^max-age=(\d+), public/.exec(h.get('cache-control') ?? '')![1]);

  it('max-age follows the clock second by second; the other headers stay; a replaced answer gets its own', async () => {
    source.held.set('10', held('answer v1', T0 - 60_000, T0 + 3_600_000));
    const der = buildRequest({ serials: [0x10] });
    const first = await get(der);
    assert.equal(first.status, 200);
    assert.equal(first.body.toString(), 'answer v1');
    assert.equal(maxAgeOf(first.headers), 3599);
    assert.equal(first.headers.get('expires'), new Date(T0 + 3_600_000).toUTCString());
    assert.equal(first.headers.get('last-modified'), new Date(T0 - 60_000).toUTCString());
    assert.equal(first.headers.get('etag'), '"answer v1"');
    assert.equal(first.headers.get('content-length'), '9');
    assert.ok(first.headers.get('date'));

    clock.advance(500); // same second
    assert.equal(maxAgeOf((await get(der)).headers), 3599);
    clock.advance(1_000);
    const later = await get(der);
    assert.equal(maxAgeOf(later.headers), 3598);
    for (const h of ['expires', 'last-modified', 'etag', 'content-length']) assert.equal(later.headers.get(h), first.headers.get(h), h);
    clock.advance(3_000_000);
    assert.equal(maxAgeOf((await get(der)).headers), 598);

    // A revocation replaced the answer in memory: new ETag, length and dates at once.
    clock.advance(1_000);
    source.held.set('10', held('answer v2 revoked', T0 + 3_000_000, T0 + 6_600_000));
    const replaced = await get(der);
    assert.equal(replaced.body.toString(), 'answer v2 revoked');
    assert.equal(replaced.headers.get('etag'), '"answer v2 revoked"');
    assert.equal(replaced.headers.get('content-length'), '17');
    assert.equal(replaced.headers.get('last-modified'), new Date(T0 + 3_000_000).toUTCString());
    assert.equal(maxAgeOf(replaced.headers), 3597);
    // The old answer's ETag no longer matches; the new one does.
    assert.equal((await get(der, { 'if-none-match': '"answer v1"' })).status, 200);
    const notModified = await get(der, { 'if-none-match': '"answer v2 revoked"' });
    assert.equal(notModified.status, 304);
    assert.equal(maxAgeOf(notModified.headers), 3597);
  });
});
