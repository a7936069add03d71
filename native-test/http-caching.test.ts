// HTTP caching of GET answers (RFC 9919 section 6.2) on real responses: Cache-Control with maxAge (default, per
// CA, per certificate profile, never past nextUpdate), Last-Modified, Expires, ETag, Date, Content-Length, 304s
// for If-None-Match and If-Modified-Since, "no-cache, must-revalidate" for unknown and nonce answers, nothing
// cacheable on POST; and openssl still verifies what GET returns.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { childEnv, createTestPki, nonceTemplate, Responder, runCli, startResponder, TestPki, variantConfig } from './support/harness';

/** The request openssl would send for one certificate (SHA-1 CertID, no nonce). */
function requestDer(pki: TestPki, caIndex: number, cert: string): Buffer {
  const ca = pki.cas[caIndex]!;
  const f = join(pki.dir, `req-${Math.random().toString(16).slice(2)}.der`);
  const r = spawnSync('openssl', ['ocsp', '-issuer', ca.caCertFile, '-cert', cert, '-no_nonce', '-reqout', f]);
  if (r.status !== 0) throw new Error(String(r.stderr));
  return readFileSync(f);
}

const getUrl = (base: string, der: Buffer) => `${base}/${encodeURIComponent(der.toString('base64'))}`;

function times(der: Buffer): { thisUpdate: Date; nextUpdate: Date } {
  const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
  const single = basic.tbsResponseData.responses[0]!;
  return { thisUpdate: single.thisUpdate, nextUpdate: single.nextUpdate! };
}

function maxAgeOf(cacheControl: string | null): number {
  const m = /^max-age=(\d+), public, no-transform, must-revalidate$/.exec(cacheControl ?? '');
  assert.ok(m, `Cache-Control: ${cacheControl}`);
  return Number(m[1]);
}

describe('HTTP caching of GET answers (RFC 9919 section 6.2)', () => {
  let pki: TestPki;
  let responder: Responder;

  before(async () => {
    pki = createTestPki([
      { name: 'pre', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'live', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    const config = variantConfig(pki, 'caching', (c) => {
      c.defaults = { ...c.defaults, validity: '1d', maxAge: '2h' };
      c.profiles = { 'short-cache': { maxAge: '10m' } };
      // Pre-produced, maxAge beyond the validity: max-age must stop at nextUpdate.
      c.cas[0].preProduction = { enabled: true };
      c.cas[0].validity = '1h';
      c.cas[0].maxAge = '3h';
      // Signed live for each request.
      c.cas[1].preProduction = { enabled: false };
    });
    // The good leaf of "live" recorded again under a profile with its own maxAge.
    const imp = runCli(['import', 'certs', '--ca', 'live', '--profile', 'short-cache', pki.cas[1]!.good.file, '--config', config], childEnv(pki));
    assert.equal(imp.status, 0, imp.stderr);
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    if (responder) assert.equal(await responder.stop(), 0, responder.output());
  });

  it('a cacheable GET answer: Cache-Control, Last-Modified = thisUpdate, Expires = nextUpdate, ETag = SHA-256, Date, Content-Length', async () => {
    for (const [i, expectMax] of [[0, 3600], [1, 600]] as const) {
      const ca = pki.cas[i]!;
      const r = await fetch(getUrl(responder.url, requestDer(pki, i, ca.revoked.file)), { signal: AbortSignal.timeout(10_000) });
      assert.equal(r.status, 200);
      const body = Buffer.from(await r.arrayBuffer());
      const { thisUpdate, nextUpdate } = times(body);
      assert.equal(r.headers.get('last-modified'), thisUpdate.toUTCString());
      assert.equal(r.headers.get('expires'), nextUpdate.toUTCString());
      assert.equal(r.headers.get('etag'), `"${createHash('sha256').update(body).digest('hex')}"`);
      assert.equal(Number(r.headers.get('content-length')), body.length);
      const date = Date.parse(r.headers.get('date') ?? '');
      assert.ok(Math.abs(date - Date.now()) < 5000, `Date: ${r.headers.get('date')}`);
      const maxAge = maxAgeOf(r.headers.get('cache-control'));
      if (i === 0) {
        // maxAge 3h, validity 1h: never beyond nextUpdate.
        const untilNext = (nextUpdate.getTime() - date) / 1000;
        assert.ok(maxAge <= untilNext + 1 && maxAge > expectMax - 30, `max-age ${maxAge}, nextUpdate in ${untilNext} s`);
      } else {
        // The revoked leaf has no profile: the default maxAge of 2h (the CA sets none).
        assert.equal(maxAge, 7200);
      }
    }
  });

  it("a certificate profile's maxAge wins over the default", async () => {
    const r = await fetch(getUrl(responder.url, requestDer(pki, 1, pki.cas[1]!.good.file)), { signal: AbortSignal.timeout(10_000) });
    assert.equal(maxAgeOf(r.headers.get('cache-control')), 600);
  });

  it('answers 304 to If-None-Match with the ETag and to If-Modified-Since not before thisUpdate; 200 otherwise', async () => {
    for (const i of [0, 1]) {
      const url = getUrl(responder.url, requestDer(pki, i, pki.cas[i]!.good.file));
      const first = await fetch(url, { signal: AbortSignal.timeout(10_000) });
      const body = Buffer.from(await first.arrayBuffer());
      const etag = first.headers.get('etag')!;
      const lastModified = first.headers.get('last-modified')!;
      const cases: [Record<string, string>, number][] = [
        [{ 'if-none-match': etag }, i === 0 ? 304 : 200], // a live answer is signed anew: another ETag
        [{ 'if-none-match': `"deadbeef", ${etag}` }, i === 0 ? 304 : 200],
        [{ 'if-none-match': '"deadbeef"' }, 200],
        [{ 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() }, 304],
        // (A live answer signed again within the same second would rightly be 304 too: not asked of it.)
        ...(i === 0 ? [[{ 'if-modified-since': lastModified }, 304] as [Record<string, string>, number]] : []),
        [{ 'if-modified-since': new Date(Date.parse(lastModified) - 3_600_000).toUTCString() }, 200],
        [{ 'if-none-match': '"deadbeef"', 'if-modified-since': new Date(Date.now() + 60_000).toUTCString() }, 200], // If-None-Match decides
      ];
      for (const [headers, status] of cases) {
        const r = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
        const got = Buffer.from(await r.arrayBuffer());
        assert.equal(r.status, status, `CA ${i}, ${JSON.stringify(headers)}`);
        if (status === 304) {
          assert.equal(got.length, 0, '304 has no body');
          assert.ok(r.headers.get('etag') && /^max-age=/.test(r.headers.get('cache-control') ?? ''), '304 repeats the caching headers');
        } else if (i === 0) assert.deepEqual(got, body, 'the same pre-produced answer');
      }
    }
  });

  it('unknown status and answers with a nonce: Cache-Control "no-cache, must-revalidate", no ETag', async () => {
    const unknown = await fetch(getUrl(responder.url, requestDer(pki, 1, pki.cas[1]!.unissued.file)), { signal: AbortSignal.timeout(10_000) });
    await unknown.arrayBuffer();
    assert.equal(unknown.headers.get('cache-control'), 'no-cache, must-revalidate');
    assert.equal(unknown.headers.get('etag'), null);
    const { der } = nonceTemplate(pki.cas[1]!, pki.cas[1]!.good.file);
    const nonce = await fetch(getUrl(responder.url, der), { signal: AbortSignal.timeout(10_000) });
    await nonce.arrayBuffer();
    assert.equal(nonce.headers.get('cache-control'), 'no-cache, must-revalidate');
    assert.equal(nonce.headers.get('expires'), null);
  });

  it('POST answers are not marked cacheable', async () => {
    for (const i of [0, 1]) {
      const r = await fetch(responder.url + '/', {
        method: 'POST', body: requestDer(pki, i, pki.cas[i]!.good.file), headers: { 'content-type': 'application/ocsp-request' }, signal: AbortSignal.timeout(10_000),
      });
      await r.arrayBuffer();
      assert.equal(r.status, 200);
      for (const h of ['cache-control', 'etag', 'expires', 'last-modified']) assert.equal(r.headers.get(h), null, `${h} on POST`);
    }
  });

  it('openssl verifies what GET returns (pre-produced and live)', async () => {
    for (const i of [0, 1]) {
      const ca = pki.cas[i]!;
      const r = await fetch(getUrl(responder.url, requestDer(pki, i, ca.good.file)), { signal: AbortSignal.timeout(10_000) });
      const f = join(pki.dir, `get-${i}.der`);
      writeFileSync(f, Buffer.from(await r.arrayBuffer()));
      const v = spawnSync('openssl', ['ocsp', '-respin', f, '-issuer', ca.caCertFile, '-cert', ca.good.file, '-CAfile', ca.caCertFile], { encoding: 'utf8' });
      assert.match(v.stdout + v.stderr, /Response verify OK/);
      assert.match(v.stdout, /: good/);
    }
  });
});
