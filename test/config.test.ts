// Config validation: defaults, units, and errors that name the offending field.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { availableParallelism } from 'node:os';
import { ConfigError, loadConfig, loadedConfigOf, validateConfig } from '../src/config/load';
import { parseDuration, parseSize } from '../src/config/units';
import { servingShare } from '../src/cluster/protocol';
import { writeTemp } from './support/openssl';

const minimal = () => ({
  tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
  cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' }, certificate: 'resp.pem' } }],
});

function invalid(raw: unknown, field: string, pattern: RegExp) {
  assert.throws(
    () => validateConfig(raw, 'test.yaml'),
    (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const line = (e as Error).message.split('\n').find((l) => l.trim().startsWith(field + ':'));
      assert.ok(line, `no error line for ${field} in:\n${(e as Error).message}`);
      assert.match(line!, pattern);
      return true;
    },
  );
}

const pick = (s: { maxConnections: number; maxConnectionsPerClient: number }) => [s.maxConnections, s.maxConnectionsPerClient];

describe('units', () => {
  it('parses durations and sizes', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('1.5h'), 5_400_000);
    assert.equal(parseDuration('7d'), 604_800_000);
    assert.equal(parseSize('64KiB'), 65_536);
    assert.equal(parseSize('1MB'), 1_000_000);
    assert.equal(parseSize(100), 100);
    assert.throws(() => parseDuration('1x'), /invalid duration "1x"/);
    assert.throws(() => parseDuration('1d12h'), /invalid duration/);
    assert.throws(() => parseSize('lots'), /invalid size/);
  });
});

describe('config validation', () => {
  it('fills documented defaults', () => {
    const { config } = validateConfig(minimal(), 'test.yaml');
    assert.equal(config.server.host, '127.0.0.1');
    assert.equal(config.server.port, 8080);
    assert.equal(config.server.bodyLimit, 65_536);
    assert.equal(config.server.workers, availableParallelism());
    assert.equal(config.defaults.validity, 86_400_000);
    assert.equal(config.defaults.responderId, 'byKey');
    assert.equal(config.tokens[0]!.sessions, 4);
    assert.equal(config.store.type, 'sqlite');
    assert.deepEqual(config.defaults.preProduction, { enabled: false, storeOnDemand: true, onIssuance: false, onRevocation: true, hashes: ['sha1', 'sha256'], nonce: 'ignore' });
    assert.deepEqual(config.cache, { maxSize: 100 * 1024 * 1024 });
    assert.deepEqual(config.preSigner, { refreshAfter: 0.5, concurrency: 16, batchSize: 500 });
    assert.deepEqual(config.cleanup, {});
    const c = validateConfig({ ...minimal(), cleanup: { every: '31d' }, defaults: { validity: 0 } }, 't.yaml').config;
    assert.equal(c.cleanup.every, 31 * 86_400_000);
    assert.equal(c.defaults.validity, 0);
  });

  it('resolves relative paths against the config file directory', () => {
    const loaded = validateConfig(minimal(), '/etc/ocsp-hsm/config.yaml');
    assert.equal(loaded.path('ca.pem'), '/etc/ocsp-hsm/ca.pem');
    assert.equal(loaded.path('/abs/x.pem'), '/abs/x.pem');
  });

  it('server.workers: a whole number from 1, errors naming the field', () => {
    assert.equal(validateConfig({ ...minimal(), server: { workers: 1 } }, 't.yaml').config.server.workers, 1);
    assert.equal(validateConfig({ ...minimal(), server: { workers: 8 } }, 't.yaml').config.server.workers, 8);
    invalid({ ...minimal(), server: { workers: 0 } }, 'server.workers', /at least 1/);
    invalid({ ...minimal(), server: { workers: 1.5 } }, 'server.workers', /a whole number of processes/);
    invalid({ ...minimal(), server: { workers: 'all' } }, 'server.workers', /a whole number of processes/);
    invalid({ ...minimal(), server: { workers: 1000 } }, 'server.workers', /at most 256/);
  });

  it('preProduction.nonce: ignore by default, whenIdle per CA or in defaults, anything else names the field', () => {
    const perCa = minimal();
    (perCa.cas[0] as Record<string, unknown>).preProduction = { nonce: 'whenIdle' };
    assert.equal(validateConfig(perCa, 't.yaml').config.cas[0]!.preProduction?.nonce, 'whenIdle');
    assert.equal(validateConfig({ ...minimal(), defaults: { preProduction: { nonce: 'whenIdle' } } }, 't.yaml').config.defaults.preProduction.nonce, 'whenIdle');
    invalid({ ...minimal(), defaults: { preProduction: { nonce: 'always' } } }, 'defaults.preProduction.nonce', /'ignore' \| 'whenIdle'/);
    (perCa.cas[0] as Record<string, unknown>).preProduction = { nonce: 'echo' };
    invalid(perCa, 'cas[0].preProduction.nonce', /'ignore' \| 'whenIdle'/);
  });

  it('server timeouts and connection bounds: defaults, nonsense refused naming the field, each serving process\'s share', () => {
    const d = validateConfig(minimal(), 't.yaml').config.server;
    assert.deepEqual([d.requestTimeout, d.headersTimeout, d.maxConnections, d.maxConnectionsPerClient], [10_000, undefined, 4096, 256]);
    const s = validateConfig({ ...minimal(), server: { headersTimeout: '3s', maxConnections: 500, maxConnectionsPerClient: 0 } }, 't.yaml').config.server;
    assert.deepEqual([s.headersTimeout, s.maxConnections, s.maxConnectionsPerClient], [3000, 500, 0]);
    invalid({ ...minimal(), server: { headersTimeout: '20s' } }, 'server.headersTimeout', /must not exceed server.requestTimeout \(10000 ms\)/);
    invalid({ ...minimal(), server: { headersTimeout: '0s' } }, 'server.headersTimeout', /greater than 0/);
    invalid({ ...minimal(), server: { maxConnections: 0 } }, 'server.maxConnections', /at least 1/);
    invalid({ ...minimal(), server: { maxConnections: 10.5 } }, 'server.maxConnections', /a whole number of connections/);
    invalid({ ...minimal(), server: { maxConnections: '1k' } }, 'server.maxConnections', /Expected number/);
    invalid({ ...minimal(), server: { maxConnectionsPerClient: -1 } }, 'server.maxConnectionsPerClient', /0 \(no bound\) or more/);
    invalid({ ...minimal(), server: { maxConnections: 100, maxConnectionsPerClient: 200 } }, 'server.maxConnectionsPerClient', /must not exceed server.maxConnections \(100\)/);
    const share = (server: object) => servingShare(validateConfig({ ...minimal(), server }, 't.yaml').config).server;
    assert.deepEqual(pick(share({ workers: 3, maxConnections: 1000, maxConnectionsPerClient: 100 })), [334, 34]);
    assert.deepEqual(pick(share({ workers: 8, maxConnections: 4, maxConnectionsPerClient: 0 })), [1, 0], 'never below 1; 0 stays no bound');
    assert.deepEqual(pick(share({ workers: 1, maxConnections: 4, maxConnectionsPerClient: 3 })), [4, 3]);
  });

  it('a validated config survives the trip to a serving process (structured clone) unchanged', () => {
    const full = {
      ...minimal(), server: { workers: 2, trustedProxies: ['10.0.0.0/8'] }, cleanup: { every: '1d' }, profiles: { tls: { validity: '12h' } },
      cas: [{ ...minimal().cas[0], previousKeys: [{ certificate: 'old.pem', signer: { token: 'hsm', key: 'pkcs11:object=old;id=%01' } }] }],
    };
    const loaded = validateConfig(full, '/etc/ocsp-hsm/config.yaml');
    const copy = loadedConfigOf(structuredClone(loaded.config), loaded.file);
    assert.deepEqual(copy.config, loaded.config);
    assert.equal(copy.path('ca.pem'), '/etc/ocsp-hsm/ca.pem');
  });

  it('names the field of each error', () => {
    invalid({ ...minimal(), bogus: 1 }, '(top level)', /Unrecognized key.*bogus/);
    invalid({ ...minimal(), server: { port: 70000 } }, 'server.port', /less than or equal to 65535/);
    invalid({ ...minimal(), defaults: { validity: '3 weeks' } }, 'defaults.validity', /invalid duration/);
    invalid({ ...minimal(), server: { responseTimeout: '0s' } }, 'server.responseTimeout', /greater than 0/);
    // Validity 0 (no nextUpdate) is allowed, except where responses are pre-produced.
    const preNoValidity = minimal();
    (preNoValidity.cas[0] as Record<string, unknown>).validity = '0s';
    (preNoValidity.cas[0] as Record<string, unknown>).preProduction = { enabled: true };
    invalid(preNoValidity, 'cas[0].validity', /pre-production needs a response validity greater than 0/);
    invalid({ ...minimal(), defaults: { validity: 0, preProduction: { enabled: true } } }, 'cas[0].preProduction', /validity greater than 0/);
    invalid({ ...minimal(), cleanup: { every: '32d' } }, 'cleanup.every', /1d-31d, 1h-23h or 1m-59m/);
    invalid({ ...minimal(), cleanup: { every: '24h' } }, 'cleanup.every', /not a cleanup interval/);
    invalid({ ...minimal(), cleanup: { every: '0m' } }, 'cleanup.every', /not a cleanup interval/);
    invalid({ ...minimal(), preSigner: { refreshAfter: 1.5 } }, 'preSigner.refreshAfter', /less than or equal to 1/);
    invalid({ ...minimal(), defaults: { preProduction: { hashes: ['md5'] } } }, 'defaults.preProduction.hashes[0]', /sha1/);
    const badCa = minimal();
    badCa.cas[0]!.signer.token = 'nope';
    invalid(badCa, 'cas[0].signer.token', /no token named "nope"/);
    const twoPins = minimal();
    (twoPins.tokens[0]!.pin as Record<string, unknown>).file = '/x';
    invalid(twoPins, 'tokens[0].pin', /exactly one of env/);
    const badKey = minimal();
    (badKey.cas[0]!.signer as Record<string, unknown>).key = { label: 'a', id: '0a' };
    invalid(badKey, 'cas[0].signer.key', /label: NAME or id: HEX/);
    (badKey.cas[0]!.signer as Record<string, unknown>).key = { id: 'xyz' };
    invalid(badKey, 'cas[0].signer.key.id', /hex bytes/);
    const dup = minimal();
    dup.cas.push({ ...dup.cas[0]! });
    invalid(dup, 'cas[1].name', /duplicate name "ca1"/);
    invalid({ tokens: minimal().tokens }, 'cas', /Required/);
  });

  it('key bindings and status rules: previous keys, non-issued policy, archive cutoff, profiles', () => {
    const renewed = minimal();
    (renewed.cas[0] as Record<string, unknown>).previousKeys = [{ certificate: 'old.pem', signer: { token: 'gone', key: { label: 'old' } } }];
    invalid(renewed, 'cas[0].previousKeys[0].signer.token', /no token named "gone"/);
    (renewed.cas[0] as Record<string, unknown>).previousKeys = [{ signer: { token: 'hsm', key: { label: 'old' } } }];
    invalid(renewed, 'cas[0].previousKeys[0].certificate', /Required/);
    invalid({ ...minimal(), defaults: { nonIssued: 'maybe' } }, 'defaults.nonIssued', /'unknown' \| 'revoked' \| 'good'/);
    invalid({ ...minimal(), defaults: { archiveCutoff: '0s' } }, 'defaults.archiveCutoff', /greater than 0/);
    invalid({ ...minimal(), profiles: { p1: { validity: 'soon' } } }, 'profiles.p1.validity', /invalid duration/);
    invalid({ ...minimal(), profiles: { p1: { untilNextUpdate: '1h' } } }, 'profiles.p1', /Unrecognized key.*untilNextUpdate/);
    invalid({ ...minimal(), profiles: { p1: { maxAge: '0s' } } }, 'profiles.p1.maxAge', /greater than 0/);
    invalid({ ...minimal(), defaults: { maxAge: 'forever' } }, 'defaults.maxAge', /invalid duration/);
    const ok = validateConfig({ ...minimal(), profiles: { p1: { validity: '1h' } }, chainCertificates: ['root.pem'] }, 'test.yaml').config;
    assert.equal(ok.profiles.p1!.validity, 3_600_000);
    assert.equal(ok.defaults.maxAge, undefined, 'no maxAge: caches may keep an answer until its nextUpdate');
    assert.deepEqual([ok.defaults.includeSignerCert, ok.defaults.includeCertChain, ok.defaults.nonIssued], [true, true, 'unknown']);
    assert.deepEqual(ok.cas[0]!.previousKeys, []);
  });

  it('reports unreadable files and YAML syntax errors with the file name', () => {
    assert.throws(() => loadConfig('/nonexistent/ocsp.yaml'), /cannot read config file \/nonexistent\/ocsp.yaml: ENOENT/);
    const bad = writeTemp('bad.yaml', 'tokens: [unclosed');
    assert.throws(() => loadConfig(bad), /bad.yaml: not valid YAML/);
  });
});
