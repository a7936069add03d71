// Keys and certificates over a responder's life, on SoftHSM2 under load: a refused reload (an RSA key for an EC
// certificate, a key that is not there) loses no answer and never flips readiness; a key rotation with
// pre-production on serves nothing from the retired signer once the reload returns, and `check` finds nothing once
// the pre-signer has run; a signer certificate that expires while running stops being used (tryLater, readiness
// names the CA, the metrics say so) while another CA keeps answering.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { KeyObject, verify } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { decodeBasicResponse } from '../src/ocsp/basic-response';
import { readCertificate } from '../src/pki/certificate';
import { tempDir } from '../test/support/temp';
import {
  assertLogged, childEnv, createTestPki, metric, opensslQuery, Responder, runCliAsync, startResponder, TestCa, TestPki, variantConfig, waitFor,
} from './support/harness';
import { tokenExtras } from './support/token-extras';

const DAY = 86_400_000;
/** openssl ocsp's output: the signature verified and the certificate is good, whichever it prints first. */
const VERIFIED_GOOD = /^(?=[\s\S]*^Response verify OK$)(?=[\s\S]*\.pem: good$)/m;

/** A DER request (SHA-1 CertID, no nonce) for a serial of the CA, made by openssl. */
function requestFor(ca: TestCa, serial: string): Buffer {
  const f = join(tempDir('req'), 'r.der');
  const r = spawnSync('openssl', ['ocsp', '-issuer', ca.caCertFile, '-serial', `0x${serial}`, '-no_nonce', '-reqout', f], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return readFileSync(f);
}

interface Answer {
  sentAt: number;
  ocspStatus: number;
  der: Buffer;
}

/** OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }: the status byte after the two headers. */
function ocspStatus(der: Buffer): number {
  const off = der[1]! < 0x80 ? 2 : 2 + (der[1]! & 0x7f);
  return der[off] === 0x0a ? der[off + 2]! : -1;
}

function signedWith(der: Buffer, key: KeyObject): boolean {
  const basic = decodeBasicResponse(der);
  const tbs = Buffer.from(basic.tbsResponseData.tbsView);
  const sig = Buffer.from(basic.signature.valueBlock.valueHexView);
  return verify('sha256', tbs, { key, dsaEncoding: 'der' }, sig);
}

/** POSTs the requests round-robin from `workers` loops until stop(); every answer and readiness probe is kept. */
function load(url: string, requests: Buffer[], workers = 8) {
  const answers: Answer[] = [];
  const failures: string[] = [];
  const readiness: { at: number; status: number; body: string }[] = [];
  let stopped = false;
  let i = 0;
  const loops = Array.from({ length: workers }, async () => {
    while (!stopped) {
      const body = requests[i++ % requests.length]!;
      const sentAt = Date.now();
      try {
        const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/ocsp-request' }, signal: AbortSignal.timeout(10_000) });
        const der = Buffer.from(await res.arrayBuffer());
        answers.push({ sentAt, ocspStatus: ocspStatus(der), der });
      } catch (e) {
        failures.push((e as Error).message);
      }
    }
  });
  const probe = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(url + '/readyz', { signal: AbortSignal.timeout(5_000) });
        readiness.push({ at: Date.now(), status: res.status, body: await res.text() });
      } catch (e) {
        readiness.push({ at: Date.now(), status: 0, body: (e as Error).message });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  return {
    answers,
    failures,
    readiness,
    async stop() {
      stopped = true;
      await Promise.all([...loops, probe]);
    },
  };
}

async function reload(r: Responder, outcome: RegExp, nth: number): Promise<void> {
  r.proc.kill('SIGHUP');
  const seen = await waitFor(() => (r.output().match(new RegExp(outcome.source, 'g')) ?? []).length >= nth, 20_000);
  assert.ok(seen, `reload ${nth} did not log ${outcome}:\n${r.output().slice(-3000)}`);
}

describe('keys and certificates over a responder\'s life', () => {
  let pki: TestPki;
  let one: TestCa;
  let two: TestCa;
  let extras: ReturnType<typeof tokenExtras>;
  let nextKey: KeyObject;
  let nextCert: string;

  before(async () => {
    pki = createTestPki([
      { name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'two', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    [one, two] = [pki.cas[0]!, pki.cas[1]!];
    extras = tokenExtras(pki);
    await extras.generate('one-rsa', 'rsa-2048');
    await extras.generate('one-other-ec', 'ec-p256');
    nextKey = await extras.generate('one-next', 'ec-p256');
    const now = Date.now();
    nextCert = await extras.issueResponder(one, nextKey, new Date(now - DAY), new Date(now + 30 * DAY), 'one-next');
  });
  after(() => extras?.close());

  it('a refused reload (RSA key for an EC certificate, then a missing key) loses no answer and never flips readiness', async () => {
    const base = variantConfig(pki, 'refused-base', () => undefined);
    const responder = await startResponder(pki, { config: base });
    try {
      const requests = [requestFor(one, one.good.serial), requestFor(one, one.revoked.serial), requestFor(two, two.good.serial)];
      const l = load(responder.url, requests);
      await new Promise((r) => setTimeout(r, 500));
      const baseText = readFileSync(base, 'utf8');
      const edited = (edit: (c: Record<string, any>) => void) => {
        const c = parse(baseText) as Record<string, any>;
        edit(c);
        writeFileSync(base, JSON.stringify(c));
      };
      edited((c) => (c.cas[0].signer.key = { label: 'one-rsa' }));
      await reload(responder, /reload failed: still serving the previous configuration/, 1);
      await new Promise((r) => setTimeout(r, 1000));
      edited((c) => (c.cas[0].signer.key = { label: 'not-on-the-token' }));
      await reload(responder, /reload failed: still serving the previous configuration/, 2);
      await new Promise((r) => setTimeout(r, 1000));
      // A key of the same type that is not the certificate's: also refused, also harmless.
      edited((c) => (c.cas[0].signer.key = { label: 'one-other-ec' }));
      await reload(responder, /reload failed: still serving the previous configuration/, 3);
      await new Promise((r) => setTimeout(r, 1000));
      await l.stop();
      const out = responder.output();
      assert.deepEqual(l.failures, []);
      assert.ok(l.answers.length > 100, `load ran (${l.answers.length} answers)`);
      const notSuccessful = l.answers.filter((a) => a.ocspStatus !== 0);
      assert.equal(notSuccessful.length, 0, `every answer successful (statuses ${[...new Set(notSuccessful.map((a) => a.ocspStatus))]})`);
      assert.ok(l.readiness.length > 20, 'readiness was probed throughout');
      assert.deepEqual(l.readiness.filter((r) => r.status !== 200), [], 'readiness never flipped');
      assert.doesNotMatch(out, /token not ready|token recovery|HSM fault/);
      const refusals = out.split('\n').filter((line) => line.includes('"msg":"reload failed')).map((line) => (JSON.parse(line) as { err: string }).err);
      assert.equal(refusals.length, 3);
      assert.match(refusals[0]!, /cas\[0\]\.signer\.key .* is an RSA 2048 key but the certificate .* holds an EC P-256 public key/, 'the type mismatch is named');
      assert.match(refusals[1]!, /not-on-the-token.*one-rsa/, 'the missing key is named, with the keys the token has');
      assert.match(refusals[2]!, /does not match the certificate/);
      // Still the original signer, proved by a client that did not come from here.
      assert.match(opensslQuery(one, responder.url, [one.good.file]), VERIFIED_GOOD);
    } finally {
      await responder.stop();
    }
  });

  it('a key rotation under load with pre-production: nothing from the retired signer after the reload returns; check finds nothing once pre-signed', async () => {
    const cfg = variantConfig(pki, 'rotation', (c) => {
      c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true, storeOnDemand: true, hashes: ['sha1'] } };
    });
    const dbFile = join(pki.dir, (parse(readFileSync(cfg, 'utf8')) as { dataDir?: string }).dataDir ?? 'data', 'ocsp-hsm.sqlite');
    // 200 more certificates of CA one, so the pre-signer has real work; a reference index.txt for check.
    const serials = Array.from({ length: 200 }, (_, i) => (0x700000 + i).toString(16));
    const w = new Database(dbFile);
    const insert = w.prepare("INSERT INTO certificates (ca, serial, status, updated_at) VALUES ('one', ?, 'good', 0)");
    w.transaction(() => serials.forEach((s) => insert.run(s)))();
    w.close();
    const index = join(pki.dir, 'rotation-index.txt');
    writeFileSync(index, serials.map((s) => `V\t301231000000Z\t\t${s.toUpperCase()}\tunknown\t/CN=leaf-${s}\n`).join(''));
    assert.equal((await runCliAsync(['presign', '--config', cfg], childEnv(pki))).status, 0);
    const retired = readCertificate(one.responderCertFile!).x509.publicKey;

    const responder = await startResponder(pki, { config: cfg });
    try {
      const requests = [...serials.slice(0, 40).map((s) => requestFor(one, s)), requestFor(one, one.good.serial), requestFor(one, one.revoked.serial)];
      const l = load(responder.url, requests);
      await new Promise((r) => setTimeout(r, 1500));
      const c = parse(readFileSync(cfg, 'utf8')) as Record<string, any>;
      c.cas[0].signer = { ...c.cas[0].signer, key: { label: 'one-next' }, certificate: nextCert };
      writeFileSync(cfg, JSON.stringify(c));
      const sighupAt = Date.now();
      responder.proc.kill('SIGHUP');
      assert.ok(await waitFor(() => /"msg":"reloaded"/.test(responder.output()), 20_000), responder.output().slice(-3000));
      const reloadedAt = Date.now();
      await new Promise((r) => setTimeout(r, 2000));
      await l.stop();
      assert.deepEqual(l.failures, []);
      const successful = l.answers.filter((a) => a.ocspStatus === 0);
      const before = successful.filter((a) => a.sentAt < sighupAt);
      const after = successful.filter((a) => a.sentAt >= reloadedAt);
      assert.ok(before.length > 50 && after.length > 50, `answers before (${before.length}) and after (${after.length}) the reload`);
      assert.ok(before.every((a) => signedWith(a.der, retired)), 'before the reload: the retired signer');
      const stale = after.filter((a) => !signedWith(a.der, nextKey));
      assert.equal(stale.length, 0, `${stale.length} of ${after.length} answers after the reload not signed by the new key`);
      assert.deepEqual(l.answers.filter((a) => a.ocspStatus !== 0 && a.ocspStatus !== 3), [], 'nothing but successful or tryLater');
      assert.match(opensslQuery(one, responder.url, [one.good.file], ['-VAfile', nextCert]), VERIFIED_GOOD);

      const checkArgs = ['check', '--ca', 'one', '--against', index, '--config', cfg];
      const beforePresign = await runCliAsync(checkArgs, childEnv(pki));
      const bad = Number(/(\d+) bad responses/.exec(beforePresign.stdout)?.[1] ?? 0);
      assert.ok(bad > 0, `check sees the retired signer's responses before the pre-signer runs:\n${beforePresign.stdout.slice(-500)}`);
      const rerun = await runCliAsync(['presign', '--config', cfg], childEnv(pki));
      assert.equal(rerun.status, 0, rerun.stderr);
      const afterPresign = await runCliAsync(checkArgs, childEnv(pki));
      const summary = afterPresign.stdout.trim().split('\n').at(-1)!;
      assert.match(summary, /^summary: (consistent|.* 0 bad responses)/, afterPresign.stdout.slice(-1500));
      const d = new Database(dbFile, { readonly: true });
      try {
        const bySigner = d.prepare("SELECT signer, count(*) AS n FROM responses WHERE ca = 'one' GROUP BY signer").all() as { signer: string; n: number }[];
        assert.equal(bySigner.length, 1, `one signer left: ${JSON.stringify(bySigner)}`);
      } finally {
        d.close();
      }
    } finally {
      await responder.stop();
    }
  });

  it('a signer certificate that expires while running is not used: tryLater, readiness names the CA, metrics say so; the other CA answers', async () => {
    // The running responder key with a certificate that expires 15 s from now (whole seconds in X.509).
    const currentKey = readCertificate(one.responderCertFile!).x509.publicKey;
    const now = Date.now();
    const expiringCert = await extras.issueResponder(one, currentKey, new Date(now - DAY), new Date(now + 15_000), 'one-expiring');
    const cfg = variantConfig(pki, 'expiring', (c) => {
      c.cas[0].signer.certificate = expiringCert;
    });
    const responder = await startResponder(pki, { config: cfg });
    try {
      assert.match(responder.output(), /"certificate":"signer"[^\n]*"msg":"signer certificate expires soon"/);
      assert.match(opensslQuery(one, responder.url, [one.good.file], ['-VAfile', expiringCert]), VERIFIED_GOOD);
      assert.equal(await metric(responder.url, 'ocsp_signer_usable{ca="one",binding="current"}'), 1);
      const notAfter = Date.parse(readCertificate(expiringCert).x509.validTo);
      assert.ok(await waitFor(() => Date.now() > notAfter + 1500, 40_000, 200));
      const req = requestFor(one, one.good.serial);
      const res = await fetch(responder.url, { method: 'POST', body: req, headers: { 'content-type': 'application/ocsp-request' } });
      assert.equal(ocspStatus(Buffer.from(await res.arrayBuffer())), 3, 'tryLater');
      assert.match(opensslQuery(two, responder.url, [two.good.file]), VERIFIED_GOOD, 'the other CA answers');
      const ready = await fetch(responder.url + '/readyz');
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /CA "one": signer certificate expired at/);
      assert.equal(await metric(responder.url, 'ocsp_signer_usable{ca="one",binding="current"}'), 0);
      assert.ok((await metric(responder.url, 'ocsp_signer_certificate_expiry_seconds{ca="one",binding="current"}')) < 0);
      assert.ok((await metric(responder.url, 'ocsp_signer_certificate_expiry_seconds{ca="two",binding="current"}')) > 0);
      await assertLogged(responder, /"ca":"one"[^\n]*"msg":"signer not used: its requests get tryLater/);
    } finally {
      await responder.stop();
    }
  });
});
