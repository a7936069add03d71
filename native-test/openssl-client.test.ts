// The daemon on real SoftHSM2 answered by the real `openssl ocsp` client: statuses, hashes, nonce, GET, POST.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { OID } from '../src/ocsp/oids';
import { createTestPki, opensslQuery, Responder, startResponder, TestCa, TestPki } from './support/harness';

describe('openssl ocsp against the daemon (EC P-256 delegated responder in SoftHSM2)', () => {
  let pki: TestPki;
  let ca: TestCa;
  let responder: Responder;

  before(async () => {
    pki = createTestPki([{ name: 'alpha', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    responder = await startResponder(pki);
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, 'clean exit on SIGTERM');
  });

  const revokedTime = () => {
    const d = new Date(pki.revokedAt);
    return `${d.toUTCString().slice(8, 11)} ${String(d.getUTCDate()).padStart(2, ' ')} ${d.toISOString().slice(11, 19)} ${d.getUTCFullYear()} GMT`;
  };

  for (const [label, extra] of [['SHA-1 CertIDs', []], ['SHA-256 CertIDs', ['-sha256']]] as const) {
    it(`good, revoked (with reason and time) and unknown, verified, with ${label}`, () => {
      const good = opensslQuery(ca, responder.url, [ca.good.file], [...extra]);
      assert.match(good, /Response verify OK/);
      assert.match(good, new RegExp(`${ca.good.file}: good`));
      const revoked = opensslQuery(ca, responder.url, [ca.revoked.file], [...extra]);
      assert.match(revoked, /Response verify OK/);
      assert.match(revoked, new RegExp(`${ca.revoked.file}: revoked`));
      assert.match(revoked, /Reason: keyCompromise/);
      assert.ok(revoked.includes(`Revocation Time: ${revokedTime()}`), revoked);
      const unknown = opensslQuery(ca, responder.url, [ca.unissued.file], [...extra]);
      assert.match(unknown, /Response verify OK/);
      assert.match(unknown, new RegExp(`${ca.unissued.file}: unknown`));
    });
  }

  it('echoes the nonce: openssl checks it and the response carries the request nonce bytes', () => {
    const reqFile = join(pki.dir, 'nonce-req.der');
    const respFile = join(pki.dir, 'nonce-resp.der');
    const out = opensslQuery(ca, responder.url, [ca.good.file], ['-nonce', '-reqout', reqFile, '-respout', respFile]);
    assert.match(out, /Response verify OK/);
    assert.doesNotMatch(out, /WARNING: no nonce|Nonce Verify error/);
    const reqNonce = pkijs.OCSPRequest.fromBER(readFileSync(reqFile)).tbsRequest.requestExtensions!.find((e) => e.extnID === OID.ocspNonce)!;
    const ocsp = pkijs.OCSPResponse.fromBER(readFileSync(respFile));
    const basic = pkijs.BasicOCSPResponse.fromBER(ocsp.responseBytes!.response.valueBlock.valueHexView);
    const respNonce = basic.tbsResponseData.responseExtensions!.find((e) => e.extnID === OID.ocspNonce)!;
    assert.deepEqual(Buffer.from(respNonce.extnValue.valueBlock.valueHexView), Buffer.from(reqNonce.extnValue.valueBlock.valueHexView));
  });

  it('answers a multi-certificate request in one verified response, SHA-256 and nonce too', () => {
    const out = opensslQuery(ca, responder.url, [ca.good.file, ca.revoked.file, ca.unissued.file], ['-sha256', '-nonce']);
    assert.match(out, /Response verify OK/);
    assert.match(out, new RegExp(`${ca.good.file}: good`));
    assert.match(out, new RegExp(`${ca.revoked.file}: revoked`));
    assert.match(out, new RegExp(`${ca.unissued.file}: unknown`));
  });

  it('serves POST under the configured path prefix', () => {
    const out = opensslQuery(ca, responder.url + '/ocsp', [ca.good.file]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
  });

  it('serves a GET URL longer than 255 bytes (three SHA-256 CertIDs and a nonce)', async () => {
    const reqFile = join(pki.dir, 'long-req.der');
    spawnSync('openssl', ['ocsp', '-sha256', '-issuer', ca.caCertFile, '-cert', ca.good.file, '-cert', ca.revoked.file, '-cert', ca.unissued.file, '-nonce', '-reqout', reqFile]);
    const path = '/ocsp/' + encodeURIComponent(readFileSync(reqFile).toString('base64'));
    assert.ok(path.length > 255, `path is ${path.length} bytes`);
    const r = await fetch(responder.url + path, { signal: AbortSignal.timeout(10_000) });
    const respFile = join(pki.dir, 'long-resp.der');
    writeFileSync(respFile, Buffer.from(await r.arrayBuffer()));
    const v = spawnSync('openssl', ['ocsp', '-respin', respFile, '-sha256', '-issuer', ca.caCertFile, '-cert', ca.good.file, '-cert', ca.revoked.file, '-cert', ca.unissued.file, '-no_nonce', '-CAfile', ca.caCertFile], { encoding: 'utf8' });
    assert.match(v.stdout + v.stderr, /Response verify OK/);
    assert.match(v.stdout, /: good[\s\S]*: revoked[\s\S]*: unknown/);
  });

  it('serves GET (root and prefix, encoded and raw) with responses openssl verifies', async () => {
    const reqFile = join(pki.dir, 'get-req.der');
    spawnSync('openssl', ['ocsp', '-sha256', '-issuer', ca.caCertFile, '-cert', ca.revoked.file, '-no_nonce', '-reqout', reqFile]);
    const b64 = readFileSync(reqFile).toString('base64');
    for (const path of ['/' + encodeURIComponent(b64), '/ocsp/' + encodeURIComponent(b64), '/ocsp/' + b64.replace(/=+$/, '')]) {
      const r = await fetch(responder.url + path, { signal: AbortSignal.timeout(10_000) });
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get('content-type'), 'application/ocsp-response');
      const respFile = join(pki.dir, 'get-resp.der');
      writeFileSync(respFile, Buffer.from(await r.arrayBuffer()));
      const v = spawnSync('openssl', ['ocsp', '-respin', respFile, '-sha256', '-issuer', ca.caCertFile, '-cert', ca.revoked.file, '-CAfile', ca.caCertFile], { encoding: 'utf8' });
      assert.match(v.stdout + v.stderr, /Response verify OK/, path);
      assert.match(v.stdout, /: revoked/, path);
    }
  });
});
