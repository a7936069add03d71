// Fault injection against real SoftHSM2 under load, through the PKCS#11 shim: the daemon keeps answering
// (tryLater while it cannot sign), readiness flips and comes back, and afterwards every answer verifies.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import {
  assertLogged, createTestPki, metric, nonceTemplate, opensslQuery, readyz, Responder, runLoadProcess, startResponder, TestCa, TestPki,
  variantConfig, waitFor,
} from './support/harness';
import type { LoadSpec } from './support/load';
import { Shim, SHIM_MODE } from './support/shim';
import { tokenExtras } from './support/token-extras';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HSM faults under load', () => {
  let pki: TestPki;
  let ca: TestCa;
  let shim: Shim;
  let responder: Responder;
  let spec: Omit<LoadSpec, 'durationMs'>;
  let config: string;
  let nextCert: string;

  before(async () => {
    pki = createTestPki([{ name: 'flt', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    shim = Shim.build(pki.dir);
    // A second responder key and certificate on the token, for the reload during a fault (last test).
    const extras = tokenExtras(pki);
    const now = Date.now();
    nextCert = await extras.issueResponder(ca, await extras.generate('flt-next', 'ec-p256'), new Date(now - 86_400_000), new Date(now + 30 * 86_400_000), 'flt-next');
    await extras.close();
    config = variantConfig(pki, 'faults', (c) => {
      c.tokens[0].module = shim.library;
      c.tokens[0].sessions = 4;
      c.tokens[0].signTimeout = '500ms';
      c.tokens[0].healthCheckInterval = '200ms';
      c.tokens[0].recovery = { initialBackoff: '50ms', maxBackoff: '400ms' };
      c.server.responseTimeout = '3s';
    });
    responder = await startResponder(pki, { config, env: shim.env(pki.modulePath) });
    const t = nonceTemplate(ca, ca.good.file);
    spec = {
      url: responder.url, concurrency: 8, templateBase64: t.der.toString('base64'), nonceOffset: t.nonceOffset,
      expectStatusTag: 0, hash: 'sha256', responderPublicKeyPem: readFileSync(ca.responderCertFile!, 'utf8'),
    };
  });
  after(async () => {
    if (responder.proc.exitCode !== null || responder.proc.signalCode !== null) {
      console.log(`daemon ended (${responder.proc.exitCode ?? responder.proc.signalCode}):\n${responder.output().slice(-4000)}`);
    }
    assert.equal(responder.proc.exitCode, null, 'the daemon survived every fault');
    assert.equal(await responder.stop(), 0, responder.output());
  });

  const flips = async () => ({
    down: await metric(responder.url, 'ocsp_hsm_token_readiness_changes_total{token="main",ready="false"}'),
    up: await metric(responder.url, 'ocsp_hsm_token_readiness_changes_total{token="main",ready="true"}'),
  });

  // 'flip': the daemon's readiness edge counters show false, then true again. '503': /readyz was also seen
  // answering 503 by polling, which needs a window of not-ready longer than a poll (a hang keeps opening fresh
  // sessions that look ready until they hang in turn, so its windows can be short).
  async function faultCycle(inject: () => void, clear: () => void, faultMs: number, expectNotReady: 'no' | 'flip' | '503') {
    const before = await flips();
    const load = runLoadProcess({ ...spec, durationMs: 800 + faultMs + 3500 });
    await sleep(800);
    inject();
    let saw503 = false;
    const faultEnd = Date.now() + faultMs;
    while (Date.now() < faultEnd) {
      if ((await readyz(responder.url)) === 503) saw503 = true;
      await sleep(20);
    }
    clear();
    const recovered = await waitFor(async () => (await readyz(responder.url)) === 200, 15_000);
    const result = await load;
    const afterFlips = await flips();
    console.log(JSON.stringify({ saw503, flips: { before, after: afterFlips }, ...result }));
    assert.ok(recovered, 'readiness came back');
    if (expectNotReady !== 'no') {
      assert.ok(afterFlips.down > before.down && afterFlips.up > before.up, 'readiness flipped false, then true');
    }
    if (expectNotReady === '503') assert.ok(saw503, '/readyz said 503 while the HSM was unusable');
    assert.equal(result.transportErrors, 0, 'every request was answered');
    assert.equal(result.wrongAnswers, 0, 'no wrong status, no bad signature, nonce always echoed');
    assert.deepEqual(Object.keys(result.byStatus).filter((k) => k !== '0' && k !== '3'), [], 'only successful or tryLater');
    assert.ok((result.byStatus['3'] ?? 0) > 0, 'requests needing a signature got tryLater during the fault');
    assert.ok((result.byStatus['0'] ?? 0) > 0);
    for (const leaf of [ca.good, ca.revoked]) {
      const out = opensslQuery(ca, responder.url, [leaf.file], ['-nonce']);
      assert.match(out, /Response verify OK/);
    }
    return result;
  }

  it('sessions invalidated (all closed on the token, user logged out): reopens and logs in again', async () => {
    const result = await faultCycle(() => shim.invalidateSessions(), () => undefined, 600, 'no');
    await assertLogged(responder, /"code":"CKR_SESSION_HANDLE_INVALID"[^\n]*"msg":"HSM fault"/);
    await assertLogged(responder, /"msg":"token recovered"/);
    assert.ok(result.latencyMs['3']!.p99 < 500);
  });

  it('device removed: tryLater at once, not ready, back after re-initializing the module', async () => {
    const result = await faultCycle(() => shim.setMode(SHIM_MODE.deviceRemoved), () => shim.setMode(SHIM_MODE.pass), 1500, '503');
    await assertLogged(responder, /"code":"CKR_DEVICE_REMOVED"/);
    await assertLogged(responder, /"reinitialized":true[^\n]*"msg":"token recovered"/);
    assert.ok(result.latencyMs['3']!.p50 < 50, 'refusals are quick while the device is gone');
  });

  it('a sign call that hangs past its deadline: tryLater within the sign timeout, no hang', async () => {
    const result = await faultCycle(() => shim.setMode(SHIM_MODE.hang), () => shim.setMode(SHIM_MODE.pass), 1500, 'flip');
    await assertLogged(responder, /"msg":"HSM sign call timed out; session set aside"/);
    assert.ok(result.latencyMs['3']!.max < 1500, `slowest tryLater ${result.latencyMs['3']!.max} ms`);
  });

  it('token deleted and re-created (restored from its files): comes back with the same keys', async () => {
    const tokens = join(pki.dir, 'tokens');
    const [dir] = readdirSync(tokens);
    const away = join(pki.dir, 'token-away');
    await faultCycle(() => renameSync(join(tokens, dir!), away), () => renameSync(away, join(tokens, dir!)), 1500, '503');
    await assertLogged(responder, /"code":"CKR_OBJECT_HANDLE_INVALID"|"code":"CKR_GENERAL_ERROR"/);
  });

  it('a reload while the device is gone cannot prove a new key: refused, and the configuration in force recovers; the same reload then succeeds', async () => {
    shim.setMode(SHIM_MODE.deviceRemoved);
    try {
      assert.ok(await waitFor(async () => (await readyz(responder.url)) === 503, 10_000), 'not ready while the device is gone');
      const c = parse(readFileSync(config, 'utf8')) as Record<string, any>;
      c.cas[0].signer = { ...c.cas[0].signer, key: { label: 'flt-next' }, certificate: nextCert };
      writeFileSync(config, JSON.stringify(c));
      responder.proc.kill('SIGHUP');
      assert.ok(await waitFor(() => /is not ready, so the new key cannot be proved[^\n]*"msg":"reload failed/.test(responder.output()), 10_000), responder.output().slice(-2000));
    } finally {
      shim.setMode(SHIM_MODE.pass);
    }
    assert.ok(await waitFor(async () => (await readyz(responder.url)) === 200, 15_000), 'the keys in force came back');
    assert.doesNotMatch(responder.output(), /token recovery stopped/);
    assert.match(opensslQuery(ca, responder.url, [ca.good.file], ['-VAfile', ca.responderCertFile!]), /Response verify OK/, 'still the old signer');
    const reloads = (responder.output().match(/"msg":"reloaded"/g) ?? []).length;
    responder.proc.kill('SIGHUP');
    assert.ok(await waitFor(() => (responder.output().match(/"msg":"reloaded"/g) ?? []).length > reloads, 10_000), responder.output().slice(-2000));
    const out = opensslQuery(ca, responder.url, [ca.good.file], ['-VAfile', nextCert]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good/);
  });
});
