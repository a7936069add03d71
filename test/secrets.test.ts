// No config error or log line prints a password, PIN or token: YAML syntax errors (whose excerpt quotes the source),
// schema errors that quote a value, the CLI's last word on any error, and a CRL URL's password in the download logs.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { systemClock } from '../src/clock';
import { failure, UsageError } from '../src/cli/usage';
import { ConfigError, loadConfig, validateConfig } from '../src/config/load';
import { CrlDownloadService } from '../src/ingest/crl-download';
import type { LoadedCertificate } from '../src/pki/certificate';
import { SqliteStore } from '../src/store/sqlite/sqlite-store';
import { writeTemp } from './support/openssl';

const PASSWORD = 'S3cretPW';

/** The message loading `yaml` fails with; it must be a ConfigError. */
function yamlError(yaml: string): string {
  const file = writeTemp('config.yaml', yaml);
  try {
    loadConfig(file);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message;
  }
  assert.fail('the config loaded');
}

function assertNoSecret(message: string, ...secrets: string[]) {
  for (const s of [PASSWORD, ...secrets]) assert.ok(!message.includes(s), `"${s}" in:\n${message}`);
}

describe('YAML syntax errors keep secrets out', () => {
  it('an unclosed double quote after store.url (the line with the password is quoted as context)', () => {
    const m = yamlError(`store:\n  url: "postgres://ocsp:${PASSWORD}@db.example.net:5432/ocsp\n`);
    assertNoSecret(m);
    assert.match(m, /not valid YAML: Missing closing "quote at line 3, column 1/);
    // The excerpt is still there, password masked.
    assert.match(m, /url: "postgres:\/\/ocsp:\*\*\*@db\.example\.net:5432\/ocsp/);
  });

  it('an unclosed single quote, and one followed by more lines', () => {
    assertNoSecret(yamlError(`store:\n  url: 'postgres://ocsp:${PASSWORD}@db/ocsp\n`));
    const m = yamlError(`store:\n  url: "postgres://ocsp:${PASSWORD}@db/ocsp\ndataDir: data\n`);
    assertNoSecret(m);
    assert.match(m, /line 4, column 1/);
  });

  it('an error on the line of the URL itself points at the column, with the password masked', () => {
    const m = yamlError(`store:\n  url: postgres://ocsp:${PASSWORD}@db/ocsp\n   bad: indent\n`);
    assertNoSecret(m);
    assert.match(m, /at line 2, column 8:\n\n {2}url: postgres:\/\/ocsp:\*\*\*@db\/ocsp\n {7}\^/);
  });

  it('a password with "@" in it, or given as ?password= in a line longer than the excerpt', () => {
    assertNoSecret(yamlError(`store:\n  url: postgres://ocsp:${PASSWORD}@x@db/ocsp\n   bad: indent\n`), `${PASSWORD}@x`, '@x@');
    const long = `postgres://db.example.net:5432/ocsp?sslmode=verify-full&application_name=ocsp-hsm-responder-1&password=${PASSWORD}`;
    assertNoSecret(yamlError(`store:\n  url: ${long}\n   bad: x\n`));
  });

  it('an unclosed quote before a URL whose "//" is mistyped (found by the config fuzz target)', () => {
    for (const url of [`postgres:/ocsp:${PASSWORD}@db/ocsp`, `postgres:/ /ocsp:${PASSWORD}@db/ocsp`, `postgres:/:${PASSWORD}@db/ocsp`]) {
      assertNoSecret(yamlError(`store:\n  url: "${url}\n`));
    }
  });

  it('an invalid escape inside the password does not quote the escape', () => {
    const m = yamlError(`store:\n  url: "postgres://ocsp:pa\\q${PASSWORD}@db/ocsp"\n`);
    assertNoSecret(m, '\\q');
    assert.match(m, /Invalid escape sequence in a double-quoted string .* at line 2, column \d+/);
  });

  it('a URL broken over two lines: the continuation line is left out, line and column kept', () => {
    const m = yamlError(`store:\n  url: "postgres://ocsp:\n    ${PASSWORD}@db/ocsp\n`);
    assertNoSecret(m);
    assert.match(m, /Missing closing "quote at line 4, column 1/);
  });

  it('a literal PIN or password where a file belongs is masked in the excerpt', () => {
    const m = yamlError('tokens:\n  - name: a\n    pin: 73915042\n   x: y\n');
    assertNoSecret(m, '73915042');
    assert.match(m, /pin: \*\*\*/);
    assertNoSecret(yamlError(`store:\n  password: ${PASSWORD}\n   x: y\n`));
  });

  it('a YAML warning (an unknown tag) is emitted with the password masked', async () => {
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.message);
    process.on('warning', onWarning);
    try {
      // Not valid as a config (tokens and cas missing): only the warning matters here.
      assert.throws(() => loadConfig(writeTemp('config.yaml', `store:\n  url: !foo postgres://ocsp:${PASSWORD}@db/ocsp\n`)), ConfigError);
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /Unresolved tag: !foo at line 2/);
    assertNoSecret(warnings[0]!);
  });
});

describe('schema errors keep secrets out', () => {
  const minimal = () => ({
    tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' }, certificate: 'resp.pem' } }],
  });
  const url = `postgres://ocsp:${PASSWORD}@db/ocsp`;
  const problems = (raw: unknown): string => {
    try {
      validateConfig(raw, 't.yaml');
    } catch (e) {
      assert.ok(e instanceof ConfigError);
      return [e.message, ...e.problems].join('\n');
    }
    assert.fail('the config was valid');
  };

  it('a URL pasted into an enum or a duration field (messages that quote the value)', () => {
    const m = problems({ ...minimal(), log: { level: url }, cleanup: { every: url }, defaults: { responderId: url } });
    assertNoSecret(m);
    assert.match(m, /log\.level: Invalid enum value.*received 'postgres:\/\/ocsp:\*\*\*@db\/ocsp'/);
    assert.match(m, /cleanup\.every: "postgres:\/\/ocsp:\*\*\*@db\/ocsp" is not a cleanup interval/);
  });

  it('a URL as a key, and a literal PIN', () => {
    assertNoSecret(problems({ ...minimal(), store: { url, [url]: 1 } }));
    const pin = problems({ ...minimal(), tokens: [{ ...minimal().tokens[0], pin: 'S3cretPIN' }], log: { level: 'S3cretPIN' } });
    assertNoSecret(pin, 'S3cretPIN');
    assert.match(pin, /tokens\[0\]\.pin: Expected object/);
  });
});

describe('CLI errors', () => {
  it('whatever an unexpected error quotes, a URL password is masked', () => {
    const f = failure(new Error(`getaddrinfo ENOTFOUND ${url()}`));
    assert.equal(f.message, 'ocsp-hsm: getaddrinfo ENOTFOUND postgres://ocsp:***@db/ocsp\n');
    // Only passwords: an option or field named like a secret is not one.
    const usage = '--token: no token named "nope" in c.yaml (have: main); pin: { env: X }, secret: y';
    assert.equal(failure(new UsageError(usage)).message, `ocsp-hsm: ${usage}\nRun "ocsp-hsm --help" for usage.\n`);
  });
});

describe('log lines', () => {
  it('a CRL download from a URL with a password logs and reports it masked', async () => {
    const port = await closedPort();
    const lines: string[] = [];
    const log = { info: (o: object, m: string) => lines.push(JSON.stringify(o) + m), warn: (o: object, m: string) => lines.push(JSON.stringify(o) + m) };
    const store = new SqliteStore(':memory:', systemClock);
    try {
      const crl = { urls: [`http://ocsp:${PASSWORD}@127.0.0.1:${port}/ca.crl`], maxSize: 1 << 20, interval: 600_000, ignoreNextUpdate: false, timeout: 5_000 };
      // The download fails before the certificate is looked at.
      const service = new CrlDownloadService({ store, clock: systemClock, log, cas: [{ name: 'ca', certificate: {} as LoadedCertificate, crl }] });
      const [outcome] = await service.runOnce({ force: true });
      assert.equal(outcome!.full.status, 'failed');
      const message = (outcome!.full as { message: string }).message;
      assert.match(message, /^http:\/\/ocsp:\*\*\*@127\.0\.0\.1:\d+\/ca\.crl: .*ECONNREFUSED/);
      assert.equal(lines.length, 1);
      assertNoSecret([message, ...lines].join('\n'));
    } finally {
      await store.close();
    }
  });
});

/** A 127.0.0.1 port nothing listens on (it did a moment ago). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function url() {
  return `postgres://ocsp:${PASSWORD}@db/ocsp`;
}
