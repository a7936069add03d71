// PKCS#11 URIs (RFC 7512) in the config: parsing, percent-decoding, refusals, and the shapes the schema hands on.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, validateConfig } from '../src/config/load';
import { formatKeyUri, keyFromUri, parsePkcs11Uri, Pkcs11UriError, tokenFromUri } from '../src/config/pkcs11-uri';

const MODULE = '/usr/lib/softhsm/libsofthsm2.so';

describe('PKCS#11 URI parsing', () => {
  it('splits path and query attributes and percent-decodes values to bytes', () => {
    const uri = parsePkcs11Uri('pkcs11:token=My%20Token;object=resp;id=%01%02%ff?module-path=/usr/lib/x.so');
    assert.deepEqual([...uri.path.keys()], ['token', 'object', 'id']);
    assert.equal(uri.path.get('token')!.toString(), 'My Token');
    assert.deepEqual(uri.path.get('id'), Buffer.from([1, 2, 255]));
    assert.equal(uri.query.get('module-path')!.toString(), '/usr/lib/x.so');
  });

  it('reads a token URI, with module-path in the query (RFC 7512) or, leniently, in the path', () => {
    assert.deepEqual(tokenFromUri(`pkcs11:token=ocsp?module-path=${MODULE}`), { tokenLabel: 'ocsp', modulePath: MODULE });
    assert.deepEqual(tokenFromUri(`pkcs11:token=ocsp;module-path=${MODULE}`), { tokenLabel: 'ocsp', modulePath: MODULE });
    assert.deepEqual(tokenFromUri('PKCS11:token=%E2%82%AC'), { tokenLabel: '€' });
  });

  it('reads a key URI: object, id (as hex), both, token and type=private', () => {
    assert.deepEqual(keyFromUri('pkcs11:object=resp'), { label: 'resp' });
    assert.deepEqual(keyFromUri('pkcs11:id=%0A%1b'), { id: '0a1b' });
    assert.deepEqual(keyFromUri('pkcs11:token=t;object=resp;id=%01;type=private'), { label: 'resp', id: '01', tokenLabel: 't' });
  });

  it('formats key URIs that read back as the same key (what keys generate prints)', () => {
    assert.equal(formatKeyUri({ tokenLabel: 'ocsp', label: 'resp-1', id: '0a0b' }), 'pkcs11:token=ocsp;object=resp-1;id=%0a%0b');
    for (const key of [
      { tokenLabel: 'My Token', label: 'a;b?c&d%e/f', id: '00ff' },
      { label: 'Schlüssel €', id: '01' },
      { tokenLabel: 't', label: 'x=y' },
    ]) {
      const uri = formatKeyUri(key);
      assert.match(uri, /^pkcs11:[^ ?&]*$/, 'no space, query or separator characters left unencoded');
      assert.deepEqual(keyFromUri(uri), key);
    }
  });

  it('refuses a PIN in the URI without echoing it, wherever it is', () => {
    for (const text of ['pkcs11:object=k?pin-value=s3cret-4711', 'pkcs11:object=k;pin-value=s3cret-4711', 'pkcs11:pin-value=s3cret-4711;bogus']) {
      assert.throws(() => keyFromUri(text), (e: unknown) => {
        assert.ok(e instanceof Pkcs11UriError);
        assert.match((e as Error).message, /pin-value.*refused.*pin\.env or pin\.file/);
        assert.ok(!(e as Error).message.includes('s3cret'), 'the PIN must not be echoed');
        return true;
      });
    }
  });

  it('refuses what it would otherwise ignore, naming the attribute', () => {
    const cases: [() => unknown, RegExp][] = [
      [() => keyFromUri('object=x'), /must start with "pkcs11:"/],
      [() => keyFromUri('pkcs11:object=a;object=b'), /"object" is given twice/],
      [() => keyFromUri('pkcs11:colour=red'), /unknown PKCS#11 URI attribute "colour"/],
      [() => keyFromUri('pkcs11:object'), /"object" in the PKCS#11 URI is not an attribute=value pair/],
      [() => keyFromUri('pkcs11:object=a%2'), /"object" .* bad percent-encoding/],
      [() => keyFromUri('pkcs11:object=a%zz'), /bad percent-encoding/],
      [() => keyFromUri('pkcs11:type=cert;object=a'), /type=cert in a key URI: the signing key is a private key/],
      [() => keyFromUri('pkcs11:token=t'), /a key URI needs object=LABEL or id=/],
      [() => keyFromUri('pkcs11:object=a;serial=42'), /"serial" is not supported here: a key URI takes object=, id=, token= and type=private/],
      [() => keyFromUri('pkcs11:object=%ff'), /"object" .* not valid UTF-8/],
      [() => keyFromUri('pkcs11:id='), /id= in the PKCS#11 URI is empty/],
      [() => tokenFromUri('pkcs11:token=t;object=k'), /"object" is not supported here: a token URI takes token= and module-path=/],
      [() => tokenFromUri('pkcs11:token=t?pin-source=file:/etc/pin'), /"pin-source" is not supported here: set the token's pin/],
      [() => tokenFromUri('pkcs11:?token=t'), /"token" belongs before the "\?"/],
    ];
    for (const [f, pattern] of cases) assert.throws(f, pattern);
  });
});

const base = () => ({
  tokens: [{ name: 'hsm', module: MODULE, tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }] as Record<string, unknown>[],
  cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' } as unknown, certificate: 'resp.pem' } }],
});

function configError(raw: unknown): string {
  try {
    validateConfig(raw, 'test.yaml');
  } catch (e) {
    assert.ok(e instanceof ConfigError);
    return (e as Error).message;
  }
  assert.fail('expected an invalid configuration');
}

describe('PKCS#11 URIs in the config', () => {
  it('tokens[].uri gives the same token as module and tokenLabel', () => {
    const raw = base();
    raw.tokens[0] = { name: 'hsm', uri: `pkcs11:token=ocsp?module-path=${MODULE}`, pin: { env: 'OCSP_PIN' } };
    const t = validateConfig(raw, 'test.yaml').config.tokens[0]!;
    assert.equal(t.module, MODULE);
    assert.equal(t.tokenLabel, 'ocsp');
    assert.ok(!('uri' in t), 'the rest of the code sees the field form only');
  });

  it('a uri may give one setting and the field the other', () => {
    const raw = base();
    raw.tokens[0] = { name: 'hsm', uri: 'pkcs11:token=ocsp', module: MODULE, pin: { env: 'OCSP_PIN' } };
    const t = validateConfig(raw, 'test.yaml').config.tokens[0]!;
    assert.deepEqual([t.module, t.tokenLabel], [MODULE, 'ocsp']);
  });

  it('a setting given twice, or not at all, is an error naming the field', () => {
    const twice = base();
    twice.tokens[0] = { ...twice.tokens[0], uri: 'pkcs11:token=other' };
    assert.match(configError(twice), /tokens\[0\]\.tokenLabel: given twice: here and as token= in uri; keep one/);
    const none = base();
    none.tokens[0] = { name: 'hsm', uri: 'pkcs11:token=ocsp', pin: { env: 'OCSP_PIN' } };
    assert.match(configError(none), /tokens\[0\]\.module: Required \(or module-path= in uri\)/);
    const bad = base();
    bad.tokens[0] = { name: 'hsm', uri: 'pkcs11:token=ocsp?pin-value=1234', module: MODULE, pin: { env: 'OCSP_PIN' } };
    const msg = configError(bad);
    assert.match(msg, /tokens\[0\]\.uri: a PIN in a PKCS#11 URI \(pin-value\) is refused/);
    assert.ok(!msg.includes('1234'));
    const long = base();
    long.tokens[0] = { name: 'hsm', uri: `pkcs11:token=${'x'.repeat(33)}`, module: MODULE, pin: { env: 'OCSP_PIN' } };
    assert.match(configError(long), /tokens\[0\]\.uri: token= is longer than a token label can be \(32 characters\)/);
  });

  it('signer.key as a URI: label, id or both', () => {
    const raw = base();
    raw.cas[0]!.signer.key = 'pkcs11:object=resp;id=%01%02;type=private';
    assert.deepEqual(validateConfig(raw, 'test.yaml').config.cas[0]!.signer.key, { label: 'resp', id: '0102' });
    raw.cas[0]!.signer.key = 'pkcs11:id=%AB';
    assert.deepEqual(validateConfig(raw, 'test.yaml').config.cas[0]!.signer.key, { id: 'ab' });
    raw.cas[0]!.signer.key = 'pkcs11:token=ocsp;object=resp';
    assert.deepEqual(validateConfig(raw, 'test.yaml').config.cas[0]!.signer.key, { label: 'resp' });
  });

  it('token= in a key URI must be the signer token\'s label', () => {
    const raw = base();
    raw.cas[0]!.signer.key = 'pkcs11:token=elsewhere;object=resp';
    assert.match(configError(raw), /cas\[0\]\.signer\.key: the URI names token "elsewhere" but signer\.token "hsm" has tokenLabel "ocsp"/);
  });

  it('a bad key URI, or a key of neither form, names signer.key', () => {
    const raw = base();
    raw.cas[0]!.signer.key = 'pkcs11:object=resp;pin-value=hunter2';
    const msg = configError(raw);
    assert.match(msg, /cas\[0\]\.signer\.key: a PIN in a PKCS#11 URI \(pin-value\) is refused/);
    assert.ok(!msg.includes('hunter2'));
    raw.cas[0]!.signer.key = 42;
    assert.match(configError(raw), /cas\[0\]\.signer\.key: a PKCS#11 URI \("pkcs11:object=NAME"\), \{ label: NAME \} or \{ id: HEX \}/);
    raw.cas[0]!.signer.key = { label: 'a', id: '01' };
    assert.match(configError(raw), /cas\[0\]\.signer\.key: set exactly one of label: NAME or id: HEX/);
  });
});
