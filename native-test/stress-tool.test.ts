// `ocsp-hsm bench` against a responder on SoftHSM2 (GET and POST, with and without nonces, store on SQLite and
// PostgreSQL), and against a fake responder whose signatures are corrupted: the verifier must notice.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkijs from 'pkijs';
import { readCertificate } from '../src/pki/certificate';
import { RequestBuilder } from '../src/stress/request-builder';
import { ERROR_RESPONSES } from '../src/ocsp/status-responses';
import { childEnv, CLI, createTestPki, Responder, runCli, startResponder, TestCa, TestPki, variantConfig } from './support/harness';
import { postgresCluster } from './support/postgres';

interface Figures {
  requests: number;
  rate: number;
  http: Record<string, number>;
  certStatus: Record<string, number>;
  sampled: number;
  valid: number;
}

/** Reads the human-readable report back; fails the test when a line is missing. */
function figures(out: string): Figures {
  const line = (label: string) => {
    const m = new RegExp(`^${label}\\s+(.*)$`, 'm').exec(out);
    assert.ok(m, `no "${label}" line in:\n${out}`);
    return m[1]!;
  };
  const counts = (text: string) => (text === 'none' ? {} : Object.fromEntries(text.split(', ').map((kv) => [kv.split(': ')[0]!, Number(kv.split(': ')[1])])));
  const req = /^(\d+) in [\d.]+ s: ([\d.]+) requests\/s/.exec(line('requests'));
  assert.ok(req, out);
  const sample = /^sampled (\d+) responses: (\d+) signatures valid/m.exec(out);
  assert.ok(sample, out);
  return { requests: Number(req[1]), rate: Number(req[2]), http: counts(line('HTTP status')), certStatus: counts(line('cert status')), sampled: Number(sample[1]), valid: Number(sample[2]) };
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Runs the CLI without blocking this process's event loop (the fake responder below lives in it). */
function runCliAsync(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const proc = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.once('exit', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    });
  });
}

/** A node:http server on 127.0.0.1 answering every request with `body`. */
async function fixedResponder(body: Buffer): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(200, { 'Content-Type': 'application/ocsp-response', 'Content-Length': body.length }).end(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ocsp`, server };
}

describe('ocsp-hsm bench', () => {
  let pki: TestPki;
  let ca: TestCa;
  let responder: Responder;
  let url: string;
  const bench = (...args: string[]) => runCli(['bench', '--config', pki.configFile, '--ca', ca.name, ...args], childEnv(pki));

  before(async () => {
    pki = createTestPki([{ name: 'benchca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    responder = await startResponder(pki);
    url = `${responder.url}/ocsp`;
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  for (const method of ['GET', 'POST']) {
    for (const nonce of [false, true]) {
      it(`${method}${nonce ? ' with nonces' : ''}: prints the figures and finds every sampled signature valid`, () => {
        const r = bench('--url', url, '--duration', '2s', '--connections', '4', '--method', method, ...(nonce ? ['--nonce'] : []));
        assert.equal(r.status, 0, r.stdout + r.stderr);
        const f = figures(r.stdout);
        assert.ok(f.rate > 0 && f.requests > 0, r.stdout);
        // Nothing failed on the way: every request got an HTTP answer, all 200, each about one certificate.
        assert.match(r.stdout, /^errors\s+none$/m);
        assert.deepEqual(f.http, { '200': f.requests });
        assert.equal(sum(f.certStatus), f.requests);
        // The store holds the good and the revoked leaf; both were asked about.
        assert.deepEqual(Object.keys(f.certStatus).sort(), ['good', 'revoked']);
        assert.equal(f.sampled, Math.min(100, f.requests));
        assert.equal(f.valid, f.sampled);
        assert.match(r.stdout, new RegExp(`^${method} ${url}`, 'm'));
        // Live signing echoes nonces (pre-production is off in this config).
        if (nonce) assert.match(r.stdout, new RegExp(`^nonce echoed in ${f.sampled} of ${f.sampled} sampled responses$`, 'm'));
        else assert.doesNotMatch(r.stdout, /nonce echoed/);
      });
    }
  }

  it('asks about the certificates of --certs (unknown ones too) and prints one JSON object with --json', () => {
    const r = bench('--url', url, '--duration', '1s', '--connections', '2', '--certs', `${ca.good.file}`, '--hash', 'sha256', '--sample', '20', '--json');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const j = JSON.parse(r.stdout) as Record<string, any>;
    assert.equal(j.certificates, 1);
    assert.ok(j.requestsPerSecond > 0);
    assert.equal(sum(j.httpStatus) + sum(j.errors), j.requests);
    assert.deepEqual(j.certStatus, { good: j.requests });
    assert.ok(j.latencyMs.p50 <= j.latencyMs.p95 && j.latencyMs.p95 <= j.latencyMs.p99 && j.latencyMs.p99 <= j.latencyMs.max && j.latencyMs.max > 0);
    assert.deepEqual(j.verification, { sampled: 20, valid: 20, failures: [] });

    const list = join(pki.dir, 'serials.txt');
    writeFileSync(list, `${ca.unissued.serial}\n`);
    const u = bench('--url', url, '--duration', '1s', '--connections', '2', '--certs', list, '--json');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    const ju = JSON.parse(u.stdout) as Record<string, any>;
    assert.deepEqual(ju.certStatus, { unknown: ju.requests });
    assert.equal(ju.verification.valid, ju.verification.sampled);
  });

  it('fails (exit 1, naming the failure) when sampled signatures do not verify', async () => {
    // A real response of the responder, then one byte of its signature flipped.
    const request = new RequestBuilder(readCertificate(ca.caCertFile), 'sha1', false).build(ca.good.serial);
    const res = await fetch(url, { method: 'POST', headers: { 'Content-Type': 'application/ocsp-request' }, body: request.der, signal: AbortSignal.timeout(10_000) });
    const der = Buffer.from(await res.arrayBuffer());
    const basic = pkijs.BasicOCSPResponse.fromBER(pkijs.OCSPResponse.fromBER(der).responseBytes!.response.valueBlock.valueHexView);
    const signature = Buffer.from(basic.signature.valueBlock.valueHexView);
    const corrupted = Buffer.from(der);
    corrupted[der.indexOf(signature) + 10] ^= 0x01;

    const list = join(pki.dir, 'good-serial.txt');
    writeFileSync(list, `${ca.good.serial}\n`);
    const fake = await fixedResponder(corrupted);
    try {
      const r = await runCliAsync(['bench', '--config', pki.configFile, '--ca', ca.name, '--url', fake.url, '--duration', '1s', '--connections', '2', '--certs', list, '--sample', '5'], childEnv(pki));
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^sampled 5 responses: 0 signatures valid, 5 failed verification$/m);
      assert.match(r.stdout, new RegExp(`serial ${ca.good.serial}: signature does not verify with the signer certificate`));
    } finally {
      fake.server.close();
    }
    // The same response unharmed passes: it is the flipped byte the verifier saw.
    const intact = await fixedResponder(der);
    try {
      const r = await runCliAsync(['bench', '--config', pki.configFile, '--ca', ca.name, '--url', intact.url, '--duration', '1s', '--connections', '2', '--certs', list, '--sample', '5'], childEnv(pki));
      assert.equal(r.status, 0, r.stdout + r.stderr);
      assert.match(r.stdout, /^sampled 5 responses: 5 signatures valid$/m);
    } finally {
      intact.server.close();
    }
  });

  it('fails when no request succeeds: tryLater everywhere, HTML, no answer (timeouts), nothing listening', async () => {
    const busy = await fixedResponder(ERROR_RESPONSES.tryLater);
    try {
      const r = await runCliAsync(['bench', '--config', pki.configFile, '--ca', ca.name, '--url', busy.url, '--duration', '1s', '--connections', '2'], childEnv(pki));
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^OCSP status\s+tryLater: \d+$/m);
      assert.match(r.stdout, /^sampled 0 responses: 0 signatures valid$/m);
      assert.match(r.stdout, /^no request succeeded$/m);
    } finally {
      busy.server.close();
    }
    const html = await fixedResponder(Buffer.from('<html>not an OCSP responder</html>'));
    try {
      const r = await runCliAsync(['bench', '--config', pki.configFile, '--ca', ca.name, '--url', html.url, '--duration', '500ms', '--connections', '2', '--sample', '3'], childEnv(pki));
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /^OCSP status\s+undecodable: \d+$/m);
      assert.match(r.stdout, /^sampled 3 responses: 0 signatures valid, 3 failed verification$/m);
      assert.match(r.stdout, /: not a successful basic OCSP response/);
    } finally {
      html.server.close();
    }
    // A responder that never answers: every request ends at --timeout, and the run at its duration.
    const silent = createServer((req) => req.resume());
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const silentUrl = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`;
      const t0 = performance.now();
      const r = await runCliAsync(['bench', '--config', pki.configFile, '--ca', ca.name, '--url', silentUrl, '--duration', '500ms', '--timeout', '300ms', '--connections', '3'], childEnv(pki));
      const seconds = (performance.now() - t0) / 1000;
      assert.equal(r.status, 1, r.stdout + r.stderr);
      // Each connection sends at most two requests (at 0 and about 350 ms), each ending at 300 ms.
      const m = /^errors\s+timeout: (\d+)$/m.exec(r.stdout);
      assert.ok(m && Number(m[1]) >= 3 && Number(m[1]) <= 6, r.stdout);
      assert.match(r.stdout, /^HTTP status\s+none$/m);
      assert.ok(seconds < 10, `took ${seconds} s`);
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
    const closed = await fixedResponder(Buffer.alloc(0));
    const closedUrl = closed.url;
    await new Promise((r) => closed.server.close(r));
    const r = bench('--url', closedUrl, '--duration', '500ms', '--connections', '2');
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stdout, /^errors\s+ECONNREFUSED: \d+$/m);
    assert.match(r.stdout, /^no request succeeded$/m);
  });

  it('exits 2 naming the option for usage errors', () => {
    const cases: [string[], RegExp][] = [
      [[], /--url URL is required/],
      [['--url', 'ftp://x'], /--url: "ftp:\/\/x" is not an http or https URL/],
      [['--url', url, '--method', 'PUT'], /--method: "PUT" is not GET or POST/],
      [['--url', url, '--connections', '0'], /--connections: "0" is not a whole number from 1 to 1024/],
      [['--url', url, '--duration', 'soon'], /--duration: invalid duration "soon"/],
      [['--url', url, '--sample=-1'], /--sample: "-1" is not a whole number/],
      [['--url', url, '--hash', 'md5'], /--hash: "md5" is not sha1 or sha256/],
      [['--url', url, '--bogus'], /Unknown option '--bogus'/],
    ];
    for (const [args, message] of cases) {
      const r = bench(...args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, message, args.join(' '));
    }
    const noCa = runCli(['bench', '--config', pki.configFile, '--ca', 'nope', '--url', url], childEnv(pki));
    assert.equal(noCa.status, 2);
    assert.match(noCa.stderr, /--ca: no CA named "nope"/);
  });
});

describe('ocsp-hsm bench with the store on PostgreSQL and pre-produced responses', () => {
  let pki: TestPki;
  let ca: TestCa;
  let config: string;
  let responder: Responder;

  before(async () => {
    const pg = await postgresCluster();
    const dbUrl = pg.url(await pg.createDatabase());
    pki = createTestPki([{ name: 'pgbenchca', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    config = variantConfig(pki, 'postgres', (c) => {
      c.store = { url: dbUrl };
      c.defaults = { validity: '1h', preProduction: { enabled: true } };
    });
    for (const args of [
      ['import', 'certs', '--ca', ca.name, ca.good.file, ca.revoked.file],
      ['revoke', '--ca', ca.name, '--serial', ca.revoked.serial, '--reason', 'keyCompromise'],
    ]) {
      const r = runCli([...args, '--config', config], childEnv(pki));
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    }
    responder = await startResponder(pki, { config });
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  it('takes the serials from PostgreSQL; pre-produced answers leave nonces out, which is reported, not failed', () => {
    const r = runCli(['bench', '--config', config, '--ca', ca.name, '--url', `${responder.url}/ocsp`, '--duration', '2s', '--connections', '4', '--nonce'], childEnv(pki));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const f = figures(r.stdout);
    assert.deepEqual(Object.keys(f.certStatus).sort(), ['good', 'revoked']);
    assert.deepEqual(f.http, { '200': f.requests });
    assert.equal(f.valid, f.sampled);
    assert.match(r.stdout, new RegExp(`^nonce echoed in 0 of ${f.sampled} sampled responses$`, 'm'));
  });
});
