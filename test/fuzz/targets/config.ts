// Fuzz target: the config loader (config/load.ts). YAML files (the demo's, the example's, one with PostgreSQL and
// publishing) edited as text and as parsed values: fields removed, added, retyped, replaced. It refuses with a
// ConfigError only, one problem per line, and never shows the PostgreSQL password.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { parse, stringify } from 'yaml';
import { ConfigError, loadConfig } from '../../../src/config/load';
import { tempDir } from '../../support/temp';
import type { FuzzTarget } from '../fuzz-target';
import { Json, mutated, textEdit, valueEdit } from '../mutate';

const TEXT = [
  ':', ': ', '"', "'", '#', '{', '}', '[', ']', ',', '- ', '&a ', '*a', '!!binary ', '!!js/function ', '|', '>', '\t', '\n',
  '  ', '%YAML 1.1\n', '---\n', '...\n', '? ', '<<: *a', 'null', '~', '0x10', '1e9999', '.nan', '-.inf', '\u0000', '\uFEFF',
];
const SCALARS: Json[] = [
  '0s', '-1s', '1s', '60h', '7d', '1.5h', '1e9d', '99999999999999999999d', 'Infinityd', '10', '0', '64KiB', '1TiB', '-1KiB',
  '1.5MiB', '0.5', '1.0000001', '', ' ', '..', '/dev/null', 'postgres://ocsp:S3cretPW@db.example:5432/ocsp', 'postgres://',
  'http://x', 'https://crl.example/a.crl', 'ftp://x', 'file:///etc/passwd', '0.0.0.0', '::', '10.0.0.0/8', '10.0.0.0/33',
  'fe80::/129', 'pkcs11:token=a?module-path=/x', 'pkcs11:object=a;id=%01%0', 'pkcs11:id=%zz', 'pkcs11:', 'byName', 'byKey',
  'sha1', 'sha256', 'md5', 'unknown', 'revoked', 'good', 'all', 'none', 'debug', 'cabf', '1d', '31d', '32d', '59m',
  0, -1, 1, 1.5, 65535, 65536, 1e308, -0, 2 ** 53, true, false, null, [], {}, ['sha1'], { env: 'X' }, { file: 'pin' },
];
const KEYS = [
  'server', 'port', 'host', 'workers', 'pathPrefix', 'bodyLimit', 'trustedProxies', 'store', 'url', 'type', 'path', 'tokens',
  'cas', 'signer', 'key', 'label', 'id', 'uri', 'pin', 'env', 'file', 'prompt', 'limits', 'rate', 'burst', 'preProduction',
  'hashes', 'index', 'interval', 'crl', 'urls', 'profiles', 'validity', 'maxAge', 'publishing', 'auth', 'tokenFile', 'mtls',
  'cluster', 'metrics', 'log', 'level', 'cache', 'maxSize', 'maxEntries', 'previousKeys', 'compliance', '__proto__', 'constructor',
];

/** The password of store.url in corpus/config/postgres-publishing.yaml. */
const PASSWORD = 'S3cretPW';

let dir: string;
let warningListeners: NodeJS.WarningListener[] = [];
let n = 0;

function checkConfig(input: Buffer): void {
  const file = join(dir, `config-${n++ % 8}.yaml`);
  writeFileSync(file, input);
  try {
    loadConfig(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw new Error(`threw ${(e as Error)?.name} instead of ConfigError`, { cause: e });
    assert.ok(e.problems.length > 0 && e.problems.every((p) => p.length > 0), 'a ConfigError lists its problems');
    assert.ok(e.message.includes(file), 'a ConfigError names the file');
    // Issue 16: no config error shows a password, wherever the mutations moved the URL or broke its other parts
    // (once the ":" or "@" around it are gone, it is no password any more).
    if (input.includes(`:${PASSWORD}@`)) {
      assert.ok(![e.message, ...e.problems].some((l) => l.includes(PASSWORD)), `a ConfigError shows the password: ${e.message}`);
    }
  }
}

export const configTarget: FuzzTarget = {
  name: 'config',
  ext: 'yaml',
  async start() {
    dir = tempDir('fuzz-config');
    // The yaml package reports unresolved tags (`!!js/function`) as process warnings; thousands would fill the log.
    warningListeners = process.listeners('warning');
    process.removeAllListeners('warning');
  },
  async stop() {
    await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
    for (const l of warningListeners) process.on('warning', l);
  },
  arbitrary: (corpus) => {
    const texts = corpus.map((c) => c.toString('utf8'));
    // Findings kept in the corpus need not be YAML: they seed the text edits only.
    const values = texts.flatMap((t) => {
      try {
        return [parse(t) as Json];
      } catch {
        return [];
      }
    });
    return fc.oneof(
      mutated(texts, textEdit(TEXT)).map((s) => Buffer.from(s, 'utf8')),
      mutated(values, valueEdit(SCALARS, KEYS)).map((v) => Buffer.from(stringify(v), 'utf8')),
    );
  },
  check: checkConfig,
};
