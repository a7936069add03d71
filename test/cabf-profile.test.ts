// compliance: cabf: every setting the CA/B Forum Baseline Requirements forbid is refused, naming the field and citing
// the section; the BR's timing (validity interval, update deadline) to the second.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { requiredUpdateMs, updateDeadlineAfterMs, validityIntervalMs } from '../src/compliance/cabf-timing';
import { technicallyConstrained } from '../src/compliance/non-issued';
import { ConfigError, validateConfig } from '../src/config/load';
import { readCertificate } from '../src/pki/certificate';
import { openssl } from './support/openssl';
import { tempDir } from './support/temp';

const H = 3_600_000;
const D = 24 * H;

function config(over: { defaults?: object; cas?: object; server?: object; preSigner?: object; profiles?: object } = {}) {
  return {
    ...(over.server ? { server: over.server } : {}),
    ...(over.preSigner ? { preSigner: over.preSigner } : {}),
    ...(over.profiles ? { profiles: over.profiles } : {}),
    defaults: { compliance: 'cabf', ...over.defaults },
    tokens: [{ name: 'hsm', module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'ocsp', pin: { env: 'OCSP_PIN' } }],
    cas: [{ name: 'ca1', certificate: 'ca.pem', signer: { token: 'hsm', key: { label: 'resp' } }, ...over.cas }],
  };
}

/** The problem lines, one per field. */
function problems(raw: unknown): string[] {
  try {
    validateConfig(raw, 'test.yaml');
    return [];
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.problems;
  }
}

function refused(raw: unknown, field: string, ...patterns: RegExp[]): void {
  const all = problems(raw);
  const line = all.find((l) => l.startsWith(`${field}: `));
  assert.ok(line, `no problem for ${field} in ${JSON.stringify(all)}`);
  for (const p of patterns) assert.match(line!, p);
  assert.match(line!, /compliance: cabf/);
}

describe('BR 4.9.9 timing', () => {
  it('counts the validity interval inclusive of thisUpdate and nextUpdate', () => {
    assert.equal(validityIntervalMs(0, 10 * D), 10 * D + 1000);
  });

  it('puts the update deadline 8 hours before nextUpdate, at most 4 days after thisUpdate, or at half a short interval', () => {
    assert.equal(updateDeadlineAfterMs(D), 16 * H);
    assert.equal(updateDeadlineAfterMs(7 * D), 4 * D);
    assert.equal(updateDeadlineAfterMs(16 * H), 8 * H);
    // 12 hours: the interval is 12h and 1 s, half of it before nextUpdate.
    assert.equal(updateDeadlineAfterMs(12 * H), 12 * H - (12 * H + 1000) / 2);
    assert.equal(requiredUpdateMs(1000, 1000 + D), 1000 + 16 * H);
  });
});

describe('compliance: cabf refuses', () => {
  it('nothing in the defaults, nor a pre-producing CA refreshed in time', () => {
    assert.deepEqual(problems(config()), []);
    assert.deepEqual(problems(config({ defaults: { validity: '863999s', preProduction: { enabled: true } }, preSigner: { interval: '1h', refreshAfter: 0.35 } })), []);
    assert.deepEqual(problems(config({ defaults: { validity: '8h' } })), []);
  });

  it('a validity interval under 8 hours or over 10 days, or none (BR 4.9.9)', () => {
    refused(config({ defaults: { validity: '7h' } }), 'defaults.validity', /7h1s/, /under the 8 hours BR 4\.9\.9 requires/);
    refused(config({ cas: { validity: '10d' } }), 'cas[0].validity', /10d1s/, /over the 10 days BR 4\.9\.9 allows/, /at most 863999s/);
    refused(config({ defaults: { validity: 0 } }), 'defaults.validity', /without nextUpdate; BR 4\.9\.9/);
    refused(config({ profiles: { short: { validity: '1h' } } }), 'profiles.short.validity', /BR 4\.9\.9/);
  });

  it('pre-production without a pre-signer schedule, or one that refreshes after the update deadline (BR 4.9.9)', () => {
    refused(config({ defaults: { preProduction: { enabled: true } } }), 'preSigner.interval', /refreshed by `ocsp-hsm presign`/, /BR 4\.9\.9/);
    // 0.9 × 1d + 1h = 22h36m, past 16h (8 hours before nextUpdate).
    refused(config({ defaults: { preProduction: { enabled: true } }, preSigner: { interval: '1h', refreshAfter: 0.9 } }), 'preSigner.refreshAfter', /22h36m/, /requires 16h after thisUpdate/, /BR 4\.9\.9/);
    // 7d: 4 days after thisUpdate at the latest; 0.6 × 7d + 1h = 4d5h48m.
    refused(config({ cas: { validity: '7d', preProduction: { enabled: true } }, preSigner: { interval: '1h', refreshAfter: 0.6 } }), 'preSigner.refreshAfter', /4d5h48m/, /requires 4d after thisUpdate/);
    // Under 16 hours: half the interval (12h: 5h59m59.5s); 0.5 × 12h + 30m = 6h30m.
    refused(config({ cas: { validity: '12h', preProduction: { enabled: true } }, preSigner: { interval: '30m' } }), 'preSigner.refreshAfter', /6h30m/);
    assert.deepEqual(problems(config({ cas: { validity: '12h', preProduction: { enabled: true } }, preSigner: { interval: '30m', refreshAfter: 0.4 } })), []);
  });

  it('a profile refreshed on its CA schedule after its own deadline (BR 4.9.9)', () => {
    const raw = config({ defaults: { preProduction: { enabled: true } }, preSigner: { interval: '1h' }, profiles: { short: { validity: '8h' } } });
    refused(raw, 'profiles.short.validity', /13h after thisUpdate/, /requires 4h after thisUpdate/);
  });

  it('final responses, whose nextUpdate is 9999-12-31 (BR 4.9.9)', () => {
    refused(config({ cas: { preProduction: { enabled: true, finalResponsesBefore: '30d' } }, preSigner: { interval: '1h' } }), 'cas[0].preProduction.finalResponsesBefore', /9999-12-31/, /10 days BR 4\.9\.9/);
  });

  it('a response timeout over ten seconds (BR 4.10.2)', () => {
    refused(config({ server: { responseTimeout: '11s' } }), 'server.responseTimeout', /ten seconds BR 4\.10\.2/);
    assert.deepEqual(problems(config({ server: { responseTimeout: '10s' } })), []);
  });

  it('per CA: cas[].compliance wins over the default', () => {
    const perCa = config({ defaults: { compliance: 'none', validity: '30d' }, cas: { compliance: 'cabf' } });
    refused(perCa, 'defaults.validity', /CA "ca1"/);
    assert.deepEqual(problems(config({ defaults: { validity: '30d' }, cas: { compliance: 'none' } })), []);
    assert.deepEqual(problems({ ...config({ defaults: { compliance: 'none', validity: '30d', preProduction: { enabled: true } } }) }), []);
  });
});

describe('Technically Constrained CA certificates (BR 7.1.2.3, 7.1.2.5)', () => {
  const dir = tempDir('tc');
  const ca = (name: string, ...ext: string[]) => {
    const out = join(dir, `${name}.pem`);
    openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `${name}.key`), '-out', out,
      '-days', '30', '-subj', `/CN=${name}`, ...ext.flatMap((e) => ['-addext', e])]);
    return readCertificate(out);
  };

  it('are those whose extendedKeyUsage leaves out serverAuth, or adds nameConstraints to it', () => {
    assert.equal(technicallyConstrained(ca('plain')), false);
    assert.equal(technicallyConstrained(ca('tls', 'extendedKeyUsage=serverAuth,clientAuth')), false);
    assert.equal(technicallyConstrained(ca('any', 'extendedKeyUsage=anyExtendedKeyUsage,emailProtection')), false);
    assert.equal(technicallyConstrained(ca('smime', 'extendedKeyUsage=emailProtection,clientAuth')), true);
    assert.equal(technicallyConstrained(ca('named', 'extendedKeyUsage=serverAuth', 'nameConstraints=critical,permitted;DNS:example.com')), true);
  });
});
