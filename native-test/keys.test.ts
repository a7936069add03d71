// `ocsp-hsm keys generate`, `keys list` and `csr` on SoftHSM2, checked with pkcs11js and the real openssl: keys are
// sign-only and never leave the token, duplicates are refused, bindings are shown, the requests verify, and the
// PIN (read from the configured file) appears in no argument and no output.
import assert from 'node:assert/strict';
import { createPublicKey, KeyObject } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { stringify } from 'yaml';
import { describeKey } from '../src/hsm/keys';
import { ecPublicKey, rsaPublicKey } from '../src/hsm/public-key';
import { openssl } from '../test/support/openssl';
import { bools, findObjects, FreshToken, freshTokens, onToken } from './support/fresh-token';
import { runCli } from './support/harness';

const TYPES = [
  { type: 'ec-p256', text: 'EC P-256' },
  { type: 'ec-p384', text: 'EC P-384' },
  { type: 'rsa-2048', text: 'RSA 2048' },
  { type: 'rsa-3072', text: 'RSA 3072' },
  { type: 'rsa-4096', text: 'RSA 4096' },
] as const;

describe('keys generate, keys list, csr', () => {
  let t: FreshToken;
  let config: string;
  const outputs: string[] = [];
  const argvs: string[][] = [];

  function cli(args: string[], cfg = config, env: NodeJS.ProcessEnv = t.env) {
    const argv = [...args, '--config', cfg];
    argvs.push(argv);
    const r = runCli(argv, env);
    outputs.push(r.stdout, r.stderr);
    return r;
  }

  function writeConfig(name: string, pin: Record<string, unknown>, extra: Record<string, unknown> = {}): string {
    const file = join(t.dir, `${name}.yaml`);
    writeFileSync(file, stringify({
      tokens: [{ name: 'main', module: t.modulePath, tokenLabel: t.tokenLabel, pin, sessions: 1 }],
      // Certificates are not read by these commands: only the key bindings matter.
      cas: [
        {
          name: 'one', certificate: 'one.pem', signer: { token: 'main', key: { label: 'k-ec-p256' }, certificate: 'resp.pem' },
          previousKeys: [{ certificate: 'old.pem', signer: { token: 'main', key: 'pkcs11:id=%0b%0b' } }],
        },
        { name: 'two', certificate: 'two.pem', signer: { token: 'main', key: { label: 'never-generated' } } },
      ],
      ...extra,
    }));
    return file;
  }

  before(() => {
    t = freshTokens('keys', [`keys-${process.pid}`, `other-${process.pid}`]);
    config = writeConfig('config', { file: t.pinFile });
  });

  after(() => {
    // Every argument list and every output of the whole suite: the PIN is in none of them.
    for (const argv of argvs) assert.ok(!argv.join(' ').includes(t.pin), 'the PIN must not be on a command line');
    for (const out of outputs) assert.ok(!out.includes(t.pin), 'the PIN must not be printed');
  });

  for (const { type, text } of TYPES) {
    it(`generates ${type}: sign-only, sensitive, never extractable; public key on the token and printed`, { timeout: 60_000 }, () => {
      const label = `k-${type}`;
      const out = join(t.dir, `${label}.pub.pem`);
      const args = ['keys', 'generate', '--token', 'main', '--label', label, '--type', type, '--out', out];
      if (type === 'ec-p384') args.push('--id', '0b0b');
      const r = cli(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^generated ${text} key pair on token "main"`, 'm'));
      assert.match(r.stdout, new RegExp(`^label: ${label}$`, 'm'));
      const id = /^id:\s+([0-9a-f]+)$/m.exec(r.stdout)?.[1];
      assert.ok(id, r.stdout);
      assert.equal(id, type === 'ec-p384' ? '0b0b' : id);
      if (type !== 'ec-p384') assert.equal(id.length, 16, 'a random 8-byte id');
      assert.match(r.stdout, new RegExp(`^uri:\\s+pkcs11:token=keys-\\d+;object=${label};id=(%[0-9a-f]{2})+$`, 'm'));
      const pem = readFileSync(out, 'utf8');
      assert.ok(r.stdout.endsWith(pem), 'the PEM is printed as written');
      const printed = createPublicKey(pem);

      onToken(t, (p11, s) => {
        const priv = findObjects(p11, s, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: label }]);
        assert.equal(priv.length, 1);
        const [idAttr] = p11.C_GetAttributeValue(s, priv[0]!, [{ type: pkcs11js.CKA_ID }]);
        assert.equal((idAttr!.value as Buffer).toString('hex'), id);
        assert.equal(describeKey(p11, s, priv[0]!).text, text);
        assert.deepEqual(
          bools(p11, s, priv[0]!, [
            pkcs11js.CKA_TOKEN, pkcs11js.CKA_PRIVATE, pkcs11js.CKA_SENSITIVE, pkcs11js.CKA_ALWAYS_SENSITIVE,
            pkcs11js.CKA_EXTRACTABLE, pkcs11js.CKA_NEVER_EXTRACTABLE, pkcs11js.CKA_SIGN,
            pkcs11js.CKA_SIGN_RECOVER, pkcs11js.CKA_DECRYPT, pkcs11js.CKA_UNWRAP, pkcs11js.CKA_DERIVE,
          ]),
          [true, true, true, true, false, true, true, false, false, false, false],
          'token, private, sensitive, always sensitive, not extractable, never extractable, sign; no recover/decrypt/unwrap/derive',
        );
        // The value itself cannot be read.
        const secret = type.startsWith('ec') ? pkcs11js.CKA_VALUE : pkcs11js.CKA_PRIVATE_EXPONENT;
        assert.throws(() => p11.C_GetAttributeValue(s, priv[0]!, [{ type: secret }]), (e: unknown) => e instanceof pkcs11js.Pkcs11Error && e.code === pkcs11js.CKR_ATTRIBUTE_SENSITIVE);

        const pub = findObjects(p11, s, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY }, { type: pkcs11js.CKA_ID, value: Buffer.from(id, 'hex') }]);
        assert.equal(pub.length, 1, 'one public key object with the same id');
        assert.deepEqual(bools(p11, s, pub[0]!, [pkcs11js.CKA_TOKEN, pkcs11js.CKA_VERIFY, pkcs11js.CKA_ENCRYPT, pkcs11js.CKA_WRAP]), [true, true, false, false]);
        assert.ok(tokenPublicKey(p11, s, pub[0]!, type).equals(printed), 'the printed key is the one on the token');
      });
    });
  }

  it('refuses a label or an id that is taken, and creates nothing', () => {
    const count = () => onToken(t, (p11, s) => findObjects(p11, s, []).length);
    const before = count();
    const byLabel = cli(['keys', 'generate', '--token', 'main', '--label', 'k-ec-p256', '--type', 'ec-p256']);
    assert.equal(byLabel.status, 1);
    assert.match(byLabel.stderr, /^ocsp-hsm: a key with label "k-ec-p256" already exists on the token$/m);
    const byId = cli(['keys', 'generate', '--token', 'main', '--label', 'fresh', '--id', '0B0B', '--type', 'ec-p256']);
    assert.equal(byId.status, 1);
    assert.match(byId.stderr, /a key with id 0b0b already exists on the token/);
    assert.equal(count(), before);
  });

  it('bad options exit 2 naming the option', () => {
    const cases: [string[], RegExp][] = [
      [['keys', 'generate', '--token', 'main', '--label', 'x', '--type', 'ec-p521'], /--type: one of ec-p256, ec-p384, rsa-2048, rsa-3072, rsa-4096/],
      [['keys', 'generate', '--token', 'main', '--label', 'x', '--type', 'ec-p256', '--id', 'xyz'], /--id: "xyz" is not hex bytes/],
      [['keys', 'generate', '--token', 'nope', '--label', 'x', '--type', 'ec-p256'], /--token: no token named "nope" .* \(have: main\)/],
      [['keys', 'generate', '--token', 'main', '--type', 'ec-p256'], /--label LABEL is required/],
      [['keys', 'generate', '--token', 'main', '--label', 'x', '--type', 'ec-p256', '--pin', '1234'], /Unknown option '--pin'/],
      [['csr', '--token', 'main', '--label', 'k-ec-p256', '--subject', 'CN=x'], /--subject: "CN=x" is not a subject/],
      [['csr', '--token', 'main', '--subject', '/CN=x'], /name the key: --label LABEL, --id HEX \(or both\), or --key/],
      [['keys', 'rotate'], /keys needs a subcommand/],
    ];
    for (const [args, pattern] of cases) {
      const r = cli(args);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
    }
  });

  it('keys list: every token and slot, key pairs with type and the CA binding using each, and missing keys', () => {
    const r = cli(['keys', 'list']);
    assert.equal(r.status, 0, r.stderr);
    const out = r.stdout;
    assert.match(out, new RegExp(`^module ${t.modulePath}$`, 'm'));
    assert.match(out, new RegExp(`^  slot \\d+: token "${t.tokenLabel}", serial [0-9a-f]+, initialized, configured as "main"$`, 'm'));
    assert.match(out, new RegExp(`^  slot \\d+: token "other-${process.pid}", serial [0-9a-f]+, initialized, not configured$`, 'm'));
    assert.match(out, /^ {2}slot \d+: token "", serial -, not initialized, not configured$/m);
    const row = (label: string) => out.split('\n').find((l) => l.trim().startsWith(label + ' '));
    assert.match(row('k-ec-p256')!, /^ {4}k-ec-p256 +[0-9a-f]{16} +EC P-256 +private\+public +cas\[0\]\.signer\.key \(CA "one"\)$/);
    assert.match(row('k-ec-p384')!, /0b0b +EC P-384 +private\+public +cas\[0\]\.previousKeys\[0\]\.signer\.key \(CA "one"\)$/);
    for (const { type, text } of TYPES.slice(2)) assert.match(row(`k-${type}`)!, new RegExp(`${text} +private\\+public +-$`));
    assert.match(out, /missing: cas\[1\]\.signer\.key \(CA "two"\) names label "never-generated", and no private key on this token matches/);
    // The unconfigured token is not logged in to, and holds nothing.
    assert.match(out, /token "other-\d+", serial [0-9a-f]+, initialized, not configured\n {4}no keys visible without login\n/);
  });

  it('keys list --token: that token only', () => {
    const r = cli(['keys', 'list', '--token', 'main']);
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /other-\d+|not initialized/);
    assert.match(r.stdout, /k-rsa-3072 /);
  });

  it('keys list with a wrong PIN: says so, shows the public objects, exits 3 (the PIN was refused)', () => {
    const cfg = writeConfig('wrong-pin', { env: 'TEST_KEYS_PIN' });
    const wrong = 'wrong-pin-0815';
    const r = cli(['keys', 'list', '--token', 'main'], cfg, { ...t.env, TEST_KEYS_PIN: wrong });
    assert.equal(r.status, 3);
    assert.match(r.stdout, /not logged in: token "main" \(tokens\[0\], tokenLabel "keys-\d+"\): login failed: CKR_PIN_INCORRECT; showing public objects only/);
    assert.match(r.stdout, /k-ec-p256 +[0-9a-f]{16} +EC P-256 +public only +cas\[0\]\.signer\.key/);
    assert.doesNotMatch(r.stdout, /missing:/, 'without login no private key can be said to be missing');
    assert.ok(!(r.stdout + r.stderr).includes(wrong));
  });

  it('keys generate and csr with a wrong PIN: exit 3 naming the token, nothing created', () => {
    const cfg = writeConfig('wrong-pin-2', { env: 'TEST_KEYS_PIN' });
    const env = { ...t.env, TEST_KEYS_PIN: 'wrong-pin-4711' };
    const count = () => onToken(t, (p11, s) => findObjects(p11, s, []).length);
    const before = count();
    for (const args of [['keys', 'generate', '--token', 'main', '--label', 'never', '--type', 'ec-p256'], ['csr', '--token', 'main', '--label', 'k-ec-p256', '--subject', '/CN=x']]) {
      const r = cli(args, cfg, env);
      assert.equal(r.status, 3, r.stderr);
      assert.match(r.stderr, /^ocsp-hsm: token "main" \(tokens\[0\], tokenLabel "keys-\d+"\): login failed: CKR_PIN_INCORRECT$/m);
      assert.ok(!(r.stdout + r.stderr).includes('wrong-pin-4711'));
    }
    assert.equal(count(), before);
  });

  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    it(`csr with the ${type} key: openssl req -verify, the requested extensions, the token's public key`, () => {
      const file = join(t.dir, `${type}.csr`);
      const r = cli(['csr', '--token', 'main', '--label', `k-${type}`, '--subject', '/C=DE/O=Example/CN=OCSP Responder', '--out', file]);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^wrote ${file}: request for /C=DE/O=Example/CN=OCSP Responder with the .* key \\(label "k-${type}"\\)`));
      const text = openssl(['req', '-in', file, '-verify', '-noout', '-text']);
      assert.match(text, /Certificate request self-signature verify OK/);
      assert.match(text, /Subject: C = DE, O = Example, CN = OCSP Responder/);
      assert.match(text, /X509v3 Key Usage: critical\s+Digital Signature\n/);
      assert.match(text, /X509v3 Extended Key Usage:\s+OCSP Signing\n/);
      assert.match(text, /OCSP No Check/);
      assert.match(text, type === 'ec-p384' ? /Signature Algorithm: ecdsa-with-SHA384/ : type === 'ec-p256' ? /ecdsa-with-SHA256/ : /sha256WithRSAEncryption/);
      const pub = openssl(['req', '-in', file, '-noout', '-pubkey']);
      assert.ok(createPublicKey(pub).equals(createPublicKey(readFileSync(join(t.dir, `k-${type}.pub.pem`)))));
    });
  }

  it('csr by PKCS#11 URI (token= picks the token) to stdout, and by id', () => {
    const byUri = cli(['csr', '--key', `pkcs11:token=${t.tokenLabel};id=%0b%0b`, '--subject', '/CN=by uri']);
    assert.equal(byUri.status, 0, byUri.stderr);
    assert.match(byUri.stdout, /^-----BEGIN CERTIFICATE REQUEST-----\n/);
    assert.match(openssl(['req', '-verify', '-noout', '-subject'], { input: byUri.stdout }), /subject=CN = by uri/);
    const missing = cli(['csr', '--token', 'main', '--id', '0c0c', '--subject', '/CN=x']);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no private key with id 0c0c on the token \(see "ocsp-hsm keys list"\)/);
  });
});

function tokenPublicKey(p11: pkcs11js.PKCS11, s: pkcs11js.Handle, h: pkcs11js.Handle, type: string): KeyObject {
  if (type.startsWith('ec')) {
    const [params, point] = p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_EC_PARAMS }, { type: pkcs11js.CKA_EC_POINT }]);
    return ecPublicKey(params!.value as Buffer, point!.value as Buffer);
  }
  const [n, e] = p11.C_GetAttributeValue(s, h, [{ type: pkcs11js.CKA_MODULUS }, { type: pkcs11js.CKA_PUBLIC_EXPONENT }]);
  return rsaPublicKey(n!.value as Buffer, e!.value as Buffer);
}
