// PKCS#11 calls that hang, each for 10 s under mixed load, through the shim: every PKCS#11 call runs in a
// session thread, so answers that need no new signature (cached responses, /readyz, /metrics) never wait for
// the hang; signing requests get tryLater; readiness flips and recovers; every answer verifies with openssl.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  assertLogged, createTestPki, metric, nonceTemplate, opensslQuery, readyz, Responder, runLoadProcess, startResponder, TestCa, TestPki,
  variantConfig, waitFor,
} from './support/harness';
import type { LoadResult, LoadSpec } from './support/load';
import { HANG, Shim } from './support/shim';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const HANG_MS = 10_000;
// Far below the hang: an answer that waited for the hung call would take about HANG_MS.
const NO_WAIT_MS = 4_000;

describe('PKCS#11 calls that hang', () => {
  let pki: TestPki;
  let ca: TestCa;
  let pre: TestCa;
  let shim: Shim;
  let responder: Responder;
  let signingSpec: Omit<LoadSpec, 'durationMs'>;
  let cachedSpec: Omit<LoadSpec, 'durationMs'>;

  before(async () => {
    // Two CAs on the token: "live" signs every answer; "pre" answers from pre-produced responses.
    pki = createTestPki([
      { name: 'live', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'pre', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    ca = pki.cas[0]!;
    pre = pki.cas[1]!;
    shim = Shim.build(pki.dir);
    const config = variantConfig(pki, 'hangs', (c) => {
      c.tokens[0].module = shim.library;
      c.tokens[0].sessions = 3;
      c.tokens[0].signTimeout = '500ms';
      c.tokens[0].callTimeout = '1s';
      c.tokens[0].healthCheckInterval = '200ms';
      c.tokens[0].recovery = { initialBackoff: '50ms', maxBackoff: '400ms' };
      c.server.responseTimeout = '3s';
      // Answers that need no new signature: pre-produced, stored on demand, then held in memory.
      c.cas[1].validity = '1h';
      c.cas[1].preProduction = { enabled: true, storeOnDemand: true, onRevocation: true };
    });
    responder = await startResponder(pki, { config, env: shim.env(pki.modulePath) });
    const pem = readFileSync(ca.responderCertFile!, 'utf8');
    const t = nonceTemplate(ca, ca.good.file);
    signingSpec = { url: responder.url, concurrency: 4, templateBase64: t.der.toString('base64'), nonceOffset: t.nonceOffset, expectStatusTag: 0, hash: 'sha256', responderPublicKeyPem: pem };
    const plain = join(pki.dir, 'plain-req.der');
    const r = spawnSync('openssl', ['ocsp', '-issuer', pre.caCertFile, '-cert', pre.revoked.file, '-no_nonce', '-reqout', plain]);
    assert.equal(r.status, 0, String(r.stderr));
    cachedSpec = {
      url: responder.url, concurrency: 4, templateBase64: readFileSync(plain).toString('base64'), nonceOffset: -1, expectStatusTag: 1, hash: 'sha256',
      responderPublicKeyPem: readFileSync(pre.responderCertFile!, 'utf8'),
    };
    // Signed once now and stored: from here on its answers need no signature.
    assert.match(opensslQuery(pre, responder.url, [pre.revoked.file], ['-no_nonce']), /: revoked/);
  });
  after(async () => {
    shim.setHang(0);
    assert.equal(responder.proc.exitCode, null, `the daemon survived every hang:\n${responder.output().slice(-3000)}`);
    assert.equal(await responder.stop(), 0, responder.output());
  });

  const flips = async () => ({
    down: await metric(responder.url, 'ocsp_hsm_token_readiness_changes_total{token="main",ready="false"}'),
    up: await metric(responder.url, 'ocsp_hsm_token_readiness_changes_total{token="main",ready="true"}'),
  });

  async function hangCycle(mask: number, invalidateSessions: boolean): Promise<{ signing: LoadResult; cached: LoadResult }> {
    const before = await flips();
    const hungBefore = shim.hungCalls();
    const durationMs = 800 + HANG_MS + 4000;
    const signingLoad = runLoadProcess({ ...signingSpec, durationMs });
    const cachedLoad = runLoadProcess({ ...cachedSpec, durationMs });
    await sleep(800);
    shim.setHang(mask);
    if (invalidateSessions) shim.invalidateSessions();
    let saw503 = false;
    let probeSlowest = 0;
    const end = Date.now() + HANG_MS;
    try {
      while (Date.now() < end) {
        const t0 = Date.now();
        const code = await readyz(responder.url);
        probeSlowest = Math.max(probeSlowest, Date.now() - t0);
        assert.notEqual(code, 0, '/readyz answered during the hang');
        if (code === 503) saw503 = true;
        await sleep(50);
      }
    } finally {
      shim.setHang(0);
    }
    const recovered = await waitFor(async () => (await readyz(responder.url)) === 200, 30_000);
    const [signing, cached] = await Promise.all([signingLoad, cachedLoad]);
    const afterFlips = await flips();
    console.log(JSON.stringify({ mask, saw503, probeSlowestMs: probeSlowest, hung: shim.hungCalls() - hungBefore, flips: { before, after: afterFlips }, signing, cached }));
    assert.ok(shim.hungCalls() > hungBefore, 'the shim held at least one call');
    assert.ok(recovered, `readiness came back:\n${responder.output().slice(-3000)}`);
    assert.ok(saw503, '/readyz said 503 while no session could sign');
    assert.ok(afterFlips.down > before.down && afterFlips.up > before.up, 'readiness flipped false, then true');
    // Answers that need no new signature: every one given, none waited for the hang.
    assert.equal(cached.transportErrors, 0, 'every cached request was answered');
    assert.equal(cached.wrongAnswers, 0);
    assert.deepEqual(Object.keys(cached.byStatus), ['0'], 'every cached request got its successful response');
    assert.ok(cached.latencyMs['0']!.max < NO_WAIT_MS, `slowest cached answer ${cached.latencyMs['0']!.max} ms`);
    assert.ok(probeSlowest < NO_WAIT_MS, `slowest /readyz ${probeSlowest} ms`);
    // Requests that need a signature: tryLater while the HSM hangs, never an error or a wrong answer.
    assert.equal(signing.transportErrors, 0, 'every signing request was answered');
    assert.equal(signing.wrongAnswers, 0, 'no wrong status, no bad signature, nonce always echoed');
    assert.deepEqual(Object.keys(signing.byStatus).filter((k) => k !== '0' && k !== '3'), [], 'only successful or tryLater');
    assert.ok((signing.byStatus['3'] ?? 0) > 0, 'signing requests got tryLater during the hang');
    for (const leaf of [ca.good, ca.revoked]) assert.match(opensslQuery(ca, responder.url, [leaf.file], ['-nonce']), /Response verify OK/);
    assert.match(opensslQuery(pre, responder.url, [pre.good.file]), /Response verify OK/);
    return { signing, cached };
  }

  it('C_SignInit hangs: sign calls time out, sessions are set aside, cached answers keep flowing', async () => {
    await hangCycle(HANG.signInit, false);
    await assertLogged(responder, /"msg":"HSM sign call timed out; session set aside"/);
  });

  it('C_OpenSession hangs while recovery reopens the sessions', async () => {
    await hangCycle(HANG.openSession, true);
    await assertLogged(responder, /"call":"open"[^\n]*"msg":"HSM call timed out; session set aside"/);
  });

  it('C_Login hangs while recovery logs in again', async () => {
    await hangCycle(HANG.login, true);
    await assertLogged(responder, /"call":"login"[^\n]*"msg":"HSM call timed out; session set aside"/);
  });

  it('C_FindObjects hangs while recovery looks up the keys', async () => {
    await hangCycle(HANG.findObjects, true);
    await assertLogged(responder, /"call":"find"[^\n]*"msg":"HSM call timed out; session set aside"/);
  });
});
