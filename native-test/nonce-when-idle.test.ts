// Strict clients against a pre-producing CA with preProduction.nonce: whenIdle, on SoftHSM2 and server.workers 2
// (the serving processes sign through the primary): on an idle responder GnuTLS ocsptool, Python cryptography and
// BouncyCastle send a nonce and verify an answer that echoes it; while a flooding client holds the signing limiter,
// each gets the pre-produced response at once (byte for byte the stored one, which a strict client then refuses).
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Agent, request } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { parse } from 'yaml';
import { createTestPki, nonceTemplate, opensslQuery, Responder, ROOT, startResponder, TestCa, TestPki, variantConfig, waitFor } from './support/harness';
import { tempDir } from '../test/support/temp';

const PY = join(ROOT, 'native-test/clients/py_ocsp_check.py');
const BC = join(ROOT, 'native-test/clients/BcOcspCheck.java');
// Debian's libbcpkix-java and a JDK (scripts/ensure-deps.sh test).
const BC_CLASSPATH = ['bcprov', 'bcpkix', 'bcutil'].map((j) => `/usr/share/java/${j}.jar`);

interface Run {
  status: number | null;
  out: string;
}

/** Runs a client without blocking this process (the metrics are read meanwhile), bounded at 60 s. */
function run(cmd: string, args: string[]): Promise<Run> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    const t = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.once('close', (status) => {
      clearTimeout(t);
      resolve({ status, out });
    });
  });
}

/** The response ocsptool prints (PEM) when it stops on a missing nonce; it writes --outfile only once it verified. */
function pemResponse(out: string): Buffer | undefined {
  const m = /-----BEGIN OCSP RESPONSE-----([^-]+)-----END OCSP RESPONSE-----/.exec(out);
  return m ? Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64') : undefined;
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/**
 * A flooding client (127.0.0.2): `loops` requests at a time, each answered before the next is sent, until stop().
 * Resolves with the answers' first bytes' OCSP statuses counted (0 successful, 3 tryLater, ...).
 */
function flood(url: string, template: { der: Buffer; nonceOffset: number }, loops: number) {
  const agent = new Agent({ keepAlive: true, maxSockets: loops });
  const byStatus: Record<string, number> = {};
  let stopped = false;
  const one = () =>
    new Promise<void>((resolve) => {
      const body = Buffer.from(template.der);
      randomBytes(16).copy(body, template.nonceOffset);
      const req = request(url, {
        method: 'POST', agent, localAddress: '127.0.0.2', timeout: 10_000,
        headers: { 'content-type': 'application/ocsp-request', 'content-length': body.length },
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const b = Buffer.concat(chunks);
          // OCSPResponse ::= SEQUENCE { responseStatus ENUMERATED, ... }: the status is the byte after 0a 01.
          const i = b.indexOf(Buffer.from([0x0a, 0x01]));
          const key = i >= 0 && i < 6 ? String(b[i + 2]) : 'other';
          byStatus[key] = (byStatus[key] ?? 0) + 1;
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        byStatus.error = (byStatus.error ?? 0) + 1;
        resolve();
      });
      req.end(body);
    });
  // Bounded: at most 60 s whatever happens to the test.
  const end = Date.now() + 60_000;
  const done = Promise.all(Array.from({ length: loops }, async () => {
    while (!stopped && Date.now() < end) await one();
  })).then(() => {
    agent.destroy();
    return byStatus;
  });
  return { stop: () => ((stopped = true), done) };
}

describe('nonce: whenIdle with GnuTLS ocsptool, Python cryptography and BouncyCastle', () => {
  let pki: TestPki;
  let ca: TestCa;
  let responder: Responder;
  let dbFile: string;
  let stored: Buffer;

  const storedResponses = (): Buffer[] => {
    const db = new Database(dbFile, { readonly: true });
    try {
      return (db.prepare("SELECT der FROM responses WHERE ca = ? AND serial = ? AND hash = 'sha1'").all(ca.name, ca.good.serial) as { der: Buffer }[]).map((r) => r.der);
    } finally {
      db.close();
    }
  };
  /** A counter's value summed over the serving processes' series (labelled worker="N"). */
  const counter = async (name: string, labels: string): Promise<number> => {
    const text = await (await fetch(responder.url + '/metrics', { signal: AbortSignal.timeout(5000) })).text();
    let sum = 0;
    for (const line of text.split('\n')) if (line.startsWith(`${name}{${labels}`)) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    return sum;
  };
  const nonces = async () => ({ signed: await counter('ocsp_nonce_requests_total', 'outcome="signed"'), preproduced: await counter('ocsp_nonce_requests_total', 'outcome="preproduced"') });

  const ocsptool = (outfile: string) =>
    run('ocsptool', [`--ask=${responder.url}`, `--load-issuer=${ca.caCertFile}`, `--load-cert=${ca.good.file}`, `--load-trust=${ca.caCertFile}`, '--nonce', `--outfile=${outfile}`]);
  // /usr/bin/python3 on purpose: Debian's python3-cryptography, not a pip install.
  const python = async () => {
    const r = await run('/usr/bin/python3', [PY, responder.url, ca.caCertFile, ca.good.file, 'POST', 'sha1', 'nonce']);
    assert.equal(r.status, 0, r.out);
    return JSON.parse(r.out) as { status: string; nonce_ok: boolean; nonce_echoed: boolean; response_sha256: string };
  };
  let bcClasses: string;
  const bouncyCastle = async () => {
    const r = await run('java', ['-cp', [bcClasses, ...BC_CLASSPATH].join(':'), 'BcOcspCheck', responder.url, ca.caCertFile, ca.good.file]);
    return { status: r.status, json: JSON.parse(r.out.trim().split('\n').at(-1)!) as { status: string; nonce_ok: boolean; nonce_echoed: boolean; response_sha256: string } };
  };

  before(async () => {
    for (const jar of BC_CLASSPATH) assert.ok(existsSync(jar), `${jar} is missing: scripts/ensure-deps.sh test installs libbcpkix-java`);
    bcClasses = tempDir('bc');
    const javac = spawnSync('javac', ['-cp', BC_CLASSPATH.join(':'), '-d', bcClasses, BC], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(javac.status, 0, javac.stderr);
    pki = createTestPki([{ name: 'strict', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    ca = pki.cas[0]!;
    const config = variantConfig(pki, 'nonce', (c) => {
      // The default deployment: serving processes ask the primary, which holds the limiter, to sign.
      c.server.workers = 2;
      // 20 signatures a second: six flooding requests waiting their turn keep the queue from ever emptying.
      c.tokens[0].limits = { rate: 20, burst: 4, queueTimeout: '2s' };
      c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true, storeOnDemand: true, nonce: 'whenIdle' } };
    });
    dbFile = join(pki.dir, (parse(readFileSync(config, 'utf8')) as { dataDir?: string }).dataDir ?? 'data', 'ocsp-hsm.sqlite');
    responder = await startResponder(pki, { config });
    // The pre-produced response: made for a request without a nonce, and stored.
    assert.match(opensslQuery(ca, responder.url, [ca.good.file], ['-no_nonce']), /: good/);
    assert.ok(await waitFor(() => storedResponses().length === 1, 5000), 'the pre-produced response is stored');
    stored = storedResponses()[0]!;
  });
  after(async () => {
    assert.equal(await responder.stop(), 0, responder.output());
  });

  it('idle: each strict client gets its nonce echoed in a response it verifies; nothing of it is stored', async () => {
    const outfile = join(pki.dir, 'ocsptool-idle.der');
    const g = await ocsptool(outfile);
    assert.equal(g.status, 0, g.out);
    assert.match(g.out, /Nonce: [0-9a-f]+/);
    assert.match(g.out, /Certificate Status: good/);
    assert.match(g.out, /Verifying OCSP Response: Success\./);
    assert.ok(!readFileSync(outfile).equals(stored), 'not the pre-produced response');
    const p = await python();
    assert.equal(p.status, 'GOOD');
    assert.equal(p.nonce_ok, true, 'Python cryptography: the nonce echoed');
    const b = await bouncyCastle();
    assert.equal(b.status, 0, JSON.stringify(b.json));
    assert.equal(b.json.status, 'good');
    assert.equal(b.json.nonce_ok, true, 'BouncyCastle: the nonce echoed');
    assert.deepEqual(await nonces(), { signed: 3, preproduced: 0 });
    assert.deepEqual(storedResponses(), [stored], 'the nonce answers were not stored');
  });

  it('while a flooding client holds the limiter: the pre-produced response at once, to every strict client', async () => {
    const flooder = flood(responder.url, nonceTemplate(ca, [ca.good.file, ca.revoked.file]), 6);
    let flooded: Record<string, number>;
    try {
      const held = await waitFor(async () => (await counter('ocsp_hsm_limiter_queue_depth', 'limiter="main",lane="live"')) >= 3, 5000);
      assert.ok(held, 'the flooder\'s live misses wait in the limiter\'s queue');
      const before = await nonces();
      const g = await ocsptool(join(pki.dir, 'ocsptool-busy.der'));
      assert.notEqual(g.status, 0, 'ocsptool refuses an answer without its nonce');
      assert.match(g.out, /could not read response's nonce/);
      assert.match(g.out, /Certificate Status: good/);
      assert.ok(pemResponse(g.out)?.equals(stored), 'ocsptool got the stored pre-produced response (as it prints it)');
      const p = await python();
      assert.equal(p.status, 'GOOD');
      assert.equal(p.nonce_echoed, false);
      assert.equal(p.response_sha256, sha256(stored), 'Python cryptography got the stored pre-produced response');
      const b = await bouncyCastle();
      assert.equal(b.status, 2, `BouncyCastle: verified, but no nonce: ${JSON.stringify(b.json)}`);
      assert.equal(b.json.response_sha256, sha256(stored), 'BouncyCastle got the stored pre-produced response');
      assert.deepEqual(await nonces(), { signed: before.signed, preproduced: before.preproduced + 3 });
      assert.ok((await counter('ocsp_hsm_limiter_queue_depth', 'limiter="main",lane="live"')) >= 1, 'the flood held the limiter throughout');
    } finally {
      flooded = await flooder.stop();
    }
    assert.ok((flooded['0'] ?? 0) > 0, `the flooder was signed for: ${JSON.stringify(flooded)}`);
    // The flood over, a strict client is signed for again.
    assert.ok(await waitFor(async () => (await counter('ocsp_hsm_limiter_queue_depth', 'limiter="main",lane="live"')) === 0, 5000));
    await new Promise((r) => setTimeout(r, 200)); // the rate's tokens come back
    const g = await ocsptool(join(pki.dir, 'ocsptool-after.der'));
    assert.equal(g.status, 0, g.out);
    assert.match(g.out, /Verifying OCSP Response: Success\./);
    assert.deepEqual(storedResponses(), [stored], 'nothing stored but the pre-produced response');
  });
});
