// `ocsp-hsm config check` on SoftHSM2: a good config passes; each kind of problem serve would stop at is one line
// naming its field, all of them are found in one run, nothing is left listening and the PIN is never printed.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { issueCertificate } from '../src/pki/issue';
import { readCertificate, toPem } from '../src/pki/certificate';
import { softwareSigner } from '../test/support/key-signer';
import { childEnv, createTestPki, runCliAsync, TestPki, variantConfig } from './support/harness';
import { Shim } from './support/shim';

const DAY = 86_400_000;

describe('config check', () => {
  let pki: TestPki;
  let pin: string;
  const held: Server[] = [];

  before(() => {
    pki = createTestPki([
      { name: 'one', caKey: 'ec-p256', responderKey: 'ec-p256' },
      { name: 'two', caKey: 'rsa-2048' },
    ]);
    pin = readFileSync(pki.userPinFile, 'utf8').trim();
  });
  after(() => held.forEach((s) => s.close()));

  async function check(config: string, env: Record<string, string> = {}) {
    const r = await runCliAsync(['config', 'check', '--config', config], childEnv(pki, env));
    const out = r.stdout + r.stderr;
    assert.ok(!out.includes(pin), 'the PIN must not appear in the output');
    for (const secret of Object.values(env)) if (secret.length > 6) assert.ok(!out.includes(secret), 'no secret from the environment in the output');
    const lines = r.stdout.split('\n').filter(Boolean);
    const problems = lines.filter((l) => !/^(warning|skipped|config check): /.test(l));
    const summary = lines.at(-1) ?? '';
    return { status: r.status, out, lines, problems, summary };
  }

  /** A port something else listens on, held until the tests end. */
  async function busyPort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    held.push(s);
    return (s.address() as { port: number }).port;
  }

  /** A port free now: bound and released. */
  async function freePort(): Promise<number> {
    const s = createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    const { port } = s.address() as { port: number };
    await new Promise((resolve) => s.close(resolve));
    return port;
  }

  /**
   * CA "one"'s responder key certified by a software CA with the given validity: the key on the token matches,
   * only the dates are at fault.
   */
  async function responderCertificate(name: string, notBefore: number, notAfter: number): Promise<{ ca: string; responder: string }> {
    const caSigner = softwareSigner('ec-p256');
    const now = Date.now();
    const ca = await issueCertificate({
      subjectCN: `${name} CA`, publicKey: caSigner.publicKey, serial: 1n, notBefore: new Date(now - 400 * DAY),
      notAfter: new Date(now + 400 * DAY), signer: caSigner, kind: 'ca',
    });
    const responder = await issueCertificate({
      subjectCN: `${name} responder`, publicKey: readCertificate(pki.cas[0]!.responderCertFile!).x509.publicKey, serial: 2n,
      notBefore: new Date(notBefore), notAfter: new Date(notAfter), issuer: ca, signer: caSigner, kind: 'ocsp-responder',
    });
    const files = { ca: join(pki.dir, `${name}-ca.pem`), responder: join(pki.dir, `${name}-responder.pem`) };
    writeFileSync(files.ca, toPem(ca.der));
    writeFileSync(files.responder, toPem(responder.der));
    return files;
  }

  it('passes a good config: exit 0, every key proved, nothing left listening', async () => {
    const port = await freePort();
    const config = variantConfig(pki, 'good', (c) => (c.server.port = port));
    const r = await check(config);
    assert.equal(r.status, 0, r.out);
    assert.deepEqual(r.problems, []);
    assert.match(r.summary, /^config check: no problems in .*good\.yaml \(2 keys proved\)$/);
    // The check bound the port and let it go: it is free again, and nothing was served.
    const s = createServer();
    await new Promise<void>((resolve, reject) => s.once('error', reject).listen(port, '127.0.0.1', resolve));
    await new Promise((resolve) => s.close(resolve));
    assert.doesNotMatch(r.out, /listening/);
  });

  it('a missing certificate file: names the field, and says the key was not checked', async () => {
    const r = await check(variantConfig(pki, 'no-cert', (c) => (c.cas[1].certificate = 'missing.pem')));
    assert.equal(r.status, 1);
    assert.deepEqual(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /^cas\[1\]\.certificate: .*missing\.pem/);
    assert.ok(r.lines.some((l) => /^skipped: cas\[1\]\.signer\.key: not checked/.test(l)), r.out);
    assert.match(r.summary, /^config check: 1 problem in .*\(1 key proved\)$/);
  });

  it('a wrong module path: names tokens[0].module and skips its keys', async () => {
    const r = await check(variantConfig(pki, 'bad-module', (c) => (c.tokens[0].module = '/nonexistent/libnope.so')));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /^tokens\[0\]\.module: cannot load PKCS#11 module \/nonexistent\/libnope\.so/);
    assert.ok(r.lines.some((l) => /^skipped: cas\[0\]\.signer\.key, cas\[1\]\.signer\.key: not checked, token "main" \(tokens\[0\]\)/.test(l)), r.out);
  });

  it('a wrong token label: names tokens[0].tokenLabel', async () => {
    const r = await check(variantConfig(pki, 'bad-label', (c) => (c.tokens[0].tokenLabel = 'absent-token')));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /^tokens\[0\]\.tokenLabel: no initialized token labelled "absent-token"/);
  });

  it('a wrong PIN: names tokens[0].pin and CKR_PIN_INCORRECT, prints neither PIN, skips the keys', async () => {
    const config = variantConfig(pki, 'wrong-pin', (c) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN' }));
    const r = await check(config, { TEST_OCSP_PIN: 'wrong-pin-4711' });
    assert.equal(r.status, 1);
    assert.deepEqual(r.problems, ['tokens[0].pin: token "main": login failed: CKR_PIN_INCORRECT']);
    assert.ok(r.lines.some((l) => l.startsWith('skipped: cas[0].signer.key, cas[1].signer.key')), r.out);
  });

  it('a PIN source that is not there: names tokens[0].pin and the variable', async () => {
    const r = await check(variantConfig(pki, 'no-pin', (c) => (c.tokens[0].pin = { env: 'TEST_OCSP_PIN_UNSET' })));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /^tokens\[0\]\.pin: token "main": environment variable TEST_OCSP_PIN_UNSET \(pin\.env\) is not set/);
  });

  it('a locked PIN (emulated by the PKCS#11 shim, as SoftHSM2 never locks): names CKR_PIN_LOCKED, tries one login', async () => {
    const shim = Shim.build(pki.dir);
    shim.emulatePinLock(3, 3);
    const config = variantConfig(pki, 'locked', (c) => (c.tokens[0].module = shim.library));
    const r = await check(config, shim.env(pki.modulePath));
    assert.equal(r.status, 1);
    assert.deepEqual(r.problems, ['tokens[0].pin: token "main": login failed: CKR_PIN_LOCKED']);
    assert.equal(shim.loginCalls(), 1, 'the PIN is tried once, not again for each key');
  });

  it('a missing key: names the field and the label', async () => {
    const r = await check(variantConfig(pki, 'missing-key', (c) => (c.cas[0].signer.key = { label: 'no-such-key' })));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /cas\[0\]\.signer\.key \(label "no-such-key" on token "main"\): no private key with label "no-such-key"/);
    assert.match(r.summary, /\(1 key proved\)$/, 'the other CA\'s key is still proved');
  });

  it('another EC key than the certificate\'s: names the key and the certificate fields', async () => {
    const r = await check(variantConfig(pki, 'mismatch-ec', (c) => (c.cas[0].signer.key = { label: 'one-ca' })));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /cas\[0\]\.signer\.key \(label "one-ca" on token "main"\) does not match the certificate in cas\[0\]\.signer\.certificate/);
  });

  it('an RSA key for an EC certificate: fails naming the key field', async () => {
    const r = await check(variantConfig(pki, 'mismatch-type', (c) => (c.cas[0].signer.key = { label: 'two-ca' })));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /cas\[0\]\.signer\.key \(label "two-ca" on token "main"\)/);
  });

  it('an expired signer certificate: names the field and when it expired', async () => {
    const now = Date.now();
    const files = await responderCertificate('expired', now - 30 * DAY, now - DAY);
    const config = variantConfig(pki, 'expired', (c) => {
      c.cas[0].certificate = files.ca;
      c.cas[0].signer.certificate = files.responder;
    });
    const r = await check(config);
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, /^cas\[0\]\.signer\.certificate: certificate expired at \d{4}-\d\d-\d\dT/);
    assert.match(r.summary, /\(2 keys proved\)$/, 'the key itself is the certificate\'s');
  });

  it('a signer certificate not valid yet: a problem', async () => {
    const now = Date.now();
    const files = await responderCertificate('future', now + DAY, now + 30 * DAY);
    const r = await check(variantConfig(pki, 'future', (c) => {
      c.cas[0].certificate = files.ca;
      c.cas[0].signer.certificate = files.responder;
    }));
    assert.equal(r.status, 1);
    assert.match(r.problems.join('\n'), /^cas\[0\]\.signer\.certificate: certificate is not valid before /);
  });

  it('a signer certificate expiring within certificates.expiryWarning: a warning, exit 0', async () => {
    const now = Date.now();
    const files = await responderCertificate('soon', now - DAY, now + 10 * DAY + 3_600_000);
    const config = variantConfig(pki, 'soon', (c) => {
      c.cas[0].certificate = files.ca;
      c.cas[0].signer.certificate = files.responder;
    });
    const r = await check(config);
    assert.equal(r.status, 0, r.out);
    assert.ok(r.lines.some((l) => /^warning: cas\[0\]\.signer\.certificate: certificate expires at .* \(in 10 days; certificates\.expiryWarning\)$/.test(l)), r.out);
    assert.match(r.summary, /^config check: no problems .*1 warning\)$/);
    const quiet = await check(variantConfig(pki, 'soon-quiet', (c) => {
      c.cas[0].certificate = files.ca;
      c.cas[0].signer.certificate = files.responder;
      c.certificates = { expiryWarning: '7d' };
    }));
    assert.equal(quiet.status, 0);
    assert.ok(!quiet.lines.some((l) => l.startsWith('warning:')), quiet.out);
  });

  it('a port in use: names server.port', async () => {
    const port = await busyPort();
    const r = await check(variantConfig(pki, 'busy-port', (c) => (c.server.port = port)));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, new RegExp(`^server\\.port: cannot listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`));
  });

  it('reports every problem of one config in one run', async () => {
    const port = await busyPort();
    const config = variantConfig(pki, 'many', (c) => {
      c.cas[1].certificate = 'missing.pem';
      c.cas[0].signer.key = { label: 'no-such-key' };
      c.metrics = { host: '127.0.0.1', port };
      c.chainCertificates = ['missing-root.pem'];
      c.publishing = { port: 0, auth: { tokenFile: 'missing-token' } };
      c.dataDir = join(pki.dir, 'user.pin', 'sub'); // under a file: the store cannot be created
    });
    const r = await check(config);
    assert.equal(r.status, 1);
    const expected = [
      /^cas\[1\]\.certificate: .*missing\.pem/,
      /^chainCertificates\[0\]: .*missing-root\.pem/,
      /^publishing\.auth\.tokenFile: cannot read token file .*missing-token/,
      /^dataDir: cannot create .*user\.pin\/sub: .*user\.pin is not a directory/,
      new RegExp(`^metrics\\.port: cannot listen on 127\\.0\\.0\\.1:${port}: listen EADDRINUSE`),
      /cas\[0\]\.signer\.key \(label "no-such-key" on token "main"\): no private key/,
    ];
    assert.equal(r.problems.length, expected.length, r.out);
    for (const re of expected) assert.ok(r.problems.some((p) => re.test(p)), `${re} in:\n${r.out}`);
    assert.match(r.summary, /^config check: 6 problems in /);
  });

  it('an invalid config: one line per schema issue, field first, nothing else tried', async () => {
    const r = await check(variantConfig(pki, 'invalid', (c) => {
      c.server.port = 'eighty';
      c.cas[0].validity = '10 years';
      c.extra = true;
    }));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 3, r.out);
    assert.ok(r.problems.includes('server.port: Expected number, received string'), r.out);
    assert.ok(r.problems.some((p) => p.startsWith('cas[0].validity: invalid duration "10 years"')), r.out);
    assert.ok(r.problems.some((p) => /^\(top level\): Unrecognized key\(s\) in object: 'extra'/.test(p)), r.out);
    assert.match(r.summary, /^config check: 3 problems in .*\(0 keys proved\)$/);
  });

  it('a PostgreSQL store that does not answer: names store.url, password redacted', async () => {
    const port = await freePort();
    const r = await check(variantConfig(pki, 'pg-down', (c) => (c.store = { url: `postgres://ocsp:s3cret-pw@127.0.0.1:${port}/ocsp` })));
    assert.equal(r.status, 1);
    assert.equal(r.problems.length, 1, r.out);
    assert.match(r.problems[0]!, new RegExp(`^store\\.url \\(postgres://ocsp:\\*\\*\\*@127\\.0\\.0\\.1:${port}/ocsp\\): cannot open the PostgreSQL store: .*ECONNREFUSED`));
    assert.ok(!r.out.includes('s3cret-pw'));
  });
});
