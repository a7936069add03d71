// SIGTERM under load: no request the daemon had received fails, and it exits 0 within its shutdown timeout (one
// process, and two serving processes).
// SIGHUP: a CA added to the config is served without a restart, over a connection opened before the reload; a
// broken config leaves the running one in place.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { parse, stringify } from 'yaml';
import { createTestPki, nonceTemplate, opensslQuery, Responder, startResponder, TestPki, variantConfig, waitFor } from './support/harness';

interface Outcome {
  connectedAt?: number;
  endedAt?: number;
  httpStatus?: number;
  ocspStatus?: number;
  error?: string;
}

/** One POST on a connection of its own (no keep-alive race), recording when its connection was accepted. */
function post(url: string, body: Buffer): Promise<Outcome> {
  const o: Outcome = {};
  return new Promise((resolve) => {
    const u = new URL(url);
    const req = request({ host: u.hostname, port: u.port, path: '/', method: 'POST', agent: false, timeout: 15_000, headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const der = Buffer.concat(chunks);
        o.httpStatus = res.statusCode;
        // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }: the status byte after the two headers.
        const off = der[1]! < 0x80 ? 2 : 2 + (der[1]! & 0x7f);
        o.ocspStatus = der[off] === 0x0a ? der[off + 2] : -1;
        o.endedAt = Date.now();
        resolve(o);
      });
      res.on('error', (e) => resolve({ ...o, error: e.message, endedAt: Date.now() }));
    });
    req.on('socket', (s) => s.once('connect', () => (o.connectedAt = Date.now())));
    req.on('error', (e: NodeJS.ErrnoException) => resolve({ ...o, error: e.code ?? e.message, endedAt: Date.now() }));
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.end(body);
  });
}

// One process, and a primary with two serving processes (which drain, signed for by the primary, before it stops).
for (const workers of [1, 2]) describe(`graceful shutdown (SIGTERM) under load, server.workers: ${workers}`, () => {
  let pki: TestPki;
  let responder: Responder;

  before(async () => {
    pki = createTestPki([{ name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    const config = variantConfig(pki, 'shutdown', (c) => {
      c.server.workers = workers;
      // Slow signing on purpose: requests queue at the limiter, so many are in flight at the signal.
      c.tokens[0].limits = { rate: 150, burst: 10, maxQueue: 1000, queueTimeout: '5s' };
      c.server = { ...c.server, responseTimeout: '8s', shutdownTimeout: '10s' };
    });
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    if (responder.proc.exitCode === null) await responder.stop();
  });

  it('answers every request it received, refuses new connections, and exits 0 within the timeout', async () => {
    const { der, nonceOffset } = nonceTemplate(pki.cas[0]!, pki.cas[0]!.good.file);
    let n = 0;
    const unique = () => {
      const b = Buffer.from(der);
      b.writeUInt32BE(++n, nonceOffset); // a fresh nonce: signed live, never cached
      return b;
    };
    const outcomes: Outcome[] = [];
    let refused = false;
    const deadline = Date.now() + 20_000;
    const workers = Array.from({ length: 24 }, async () => {
      while (!refused && Date.now() < deadline) {
        const o = await post(responder.url, unique());
        outcomes.push(o);
        if (o.error === 'ECONNREFUSED') refused = true;
      }
    });
    await new Promise((r) => setTimeout(r, 1500));
    const exited = new Promise<number | null>((r) => responder.proc.once('exit', (code) => r(code)));
    const signalAt = Date.now();
    responder.proc.kill('SIGTERM');
    const code = await exited;
    const exitAfterMs = Date.now() - signalAt;
    await Promise.all(workers);

    const received = outcomes.filter((o) => o.connectedAt !== undefined && o.connectedAt < signalAt);
    const inFlight = received.filter((o) => o.endedAt! >= signalAt);
    const failed = received.filter((o) => o.httpStatus !== 200 || o.ocspStatus !== 0);
    assert.equal(code, 0, responder.output().slice(-2000));
    assert.ok(exitAfterMs < 10_000 + 2_000, `exited ${exitAfterMs} ms after SIGTERM`);
    assert.ok(inFlight.length >= 5, `only ${inFlight.length} requests were in flight at SIGTERM: the test proves nothing`);
    assert.deepEqual(failed, [], `${failed.length} of ${received.length} received requests failed`);
    assert.ok(refused, 'new connections are refused once it stops accepting');
    assert.match(responder.output(), /"msg":"shutting down"[\s\S]*"msg":"stopped"/);
  });
});

describe('reload (SIGHUP)', () => {
  let pki: TestPki;
  let responder: Responder;
  let config: string;
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });

  /** A POST on the one keep-alive connection; which local port it used. */
  function postKeepAlive(url: string, body: Buffer): Promise<{ status: number; localPort: number; reused: boolean }> {
    return new Promise((resolve, reject) => {
      const u = new URL(url);
      const req = request({ host: u.hostname, port: u.port, path: '/', method: 'POST', agent, timeout: 10_000, headers: { 'content-type': 'application/ocsp-request' } }, (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode!, localPort: req.socket!.localPort!, reused: req.reusedSocket }));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  before(async () => {
    pki = createTestPki([
      { name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'two', caKey: 'ec-p256', responderKey: 'ec-p256' },
    ]);
    // Both CAs' keys are on the token; the daemon starts knowing only "one".
    config = variantConfig(pki, 'reload', (c) => {
      c.cas = c.cas.slice(0, 1);
    });
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    agent.destroy();
    assert.equal(await responder.stop(), 0, responder.output());
  });

  it('serves a CA added to the config after SIGHUP, on a connection opened before it', async () => {
    const [one, two] = pki.cas as [TestPki['cas'][number], TestPki['cas'][number]];
    assert.match(opensslQuery(two, responder.url, [two.good.file]), /unauthorized/i);
    const req = nonceTemplate(one, one.good.file).der;
    const first = await postKeepAlive(responder.url, req);
    assert.equal(first.status, 200);

    const full = parse(readFileSync(pki.configFile, 'utf8')) as Record<string, any>;
    const cfg = parse(readFileSync(config, 'utf8')) as Record<string, any>;
    cfg.cas = full.cas;
    writeFileSync(config, stringify(cfg));
    responder.proc.kill('SIGHUP');
    assert.ok(await waitFor(() => /"msg":"reloaded"/.test(responder.output()), 10_000), responder.output().slice(-2000));

    const out = opensslQuery(two, responder.url, [two.good.file, two.revoked.file]);
    assert.match(out, /Response verify OK/);
    assert.match(out, /: good[\s\S]*: revoked/);
    assert.match(opensslQuery(one, responder.url, [one.good.file]), /: good/);
    // The connection opened before the reload still serves.
    const second = await postKeepAlive(responder.url, req);
    assert.equal(second.status, 200);
    assert.equal(second.reused, true, 'the same keep-alive connection');
    assert.equal(second.localPort, first.localPort);
    assert.equal(responder.proc.exitCode, null, 'no restart');
  });

  it('a reload that fails (a key missing from the token) keeps the running configuration', async () => {
    const cfg = parse(readFileSync(config, 'utf8')) as Record<string, any>;
    cfg.cas[1].signer.key = { label: 'no-such-key' };
    writeFileSync(config, stringify(cfg));
    const before = responder.output().length;
    responder.proc.kill('SIGHUP');
    assert.ok(await waitFor(() => /"msg":"reload failed: still serving the previous configuration"/.test(responder.output().slice(before)), 10_000));
    assert.match(responder.output().slice(before), /no-such-key/);
    const two = pki.cas[1]!;
    assert.match(opensslQuery(two, responder.url, [two.good.file]), /: good/);
  });
});
