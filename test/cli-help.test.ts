// `ocsp-hsm help`, `--help`, `-h` and `--version` need no config file; exit codes for PIN rejections.
import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import * as pkcs11js from 'pkcs11js';
import { exitCodeFor } from '../src/cli/exit-codes';
import { failure } from '../src/cli/usage';
import { PinRejectedError, TokenFatalError } from '../src/hsm/token';
import { tempDir } from './support/temp';

const ROOT = resolve(__dirname, '../..');
const CLI = join(ROOT, 'bin/ocsp-hsm');

/** The CLI run in an empty directory (no ocsp-hsm.yaml) with no $OCSP_HSM_CONFIG. */
function run(args: string[], cwd = tempDir('cli-help')) {
  const env = { ...process.env };
  delete env.OCSP_HSM_CONFIG;
  const r = spawnSync(process.execPath, [CLI, ...args], { cwd, env, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('help and version without a config', () => {
  for (const args of [['help'], ['--help'], ['-h'], ['serve', '--help'], ['config', 'check', '-h'], ['import', 'index', '--help']]) {
    it(`ocsp-hsm ${args.join(' ')}: usage on stdout, exit 0`, () => {
      const r = run(args);
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /^usage: ocsp-hsm <command> \[options\]/);
      assert.match(r.stdout, /config check/);
      assert.equal(r.stderr, '');
    });
  }

  it('no command: usage, exit 2', () => {
    const r = run([]);
    assert.equal(r.status, 2);
    assert.match(r.stdout, /^usage: /);
  });

  it('--version: the installed package\'s version, not the one of a package.json in the working directory', () => {
    const cwd = tempDir('cli-version');
    writeFileSync(join(cwd, 'package.json'), JSON.stringify({ name: 'ocsp-hsm', version: '9.9.9-decoy' }));
    const r = run(['--version'], cwd);
    assert.equal(r.status, 0, r.stderr);
    const version = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(r.stdout, `${version}\n`);
  });

  it('a command that needs the config still says which file it could not read', () => {
    const r = run(['status', '--ca', 'x', '--serial', '01']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /cannot read config file ocsp-hsm\.yaml: ENOENT/);
  });

  it('config without "check": a usage error, exit 2', () => {
    const r = run(['config']);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /config needs a subcommand: "config check"/);
  });
});

describe('exit codes for PIN rejections', () => {
  const ckr = (code: number) => new pkcs11js.Pkcs11Error('C_Login', code, 'C_Login');

  it('refused (3) and locked (4), from the typed error or a PKCS#11 error among its causes', () => {
    assert.equal(exitCodeFor(new PinRejectedError('x', 'refused')), 3);
    assert.equal(exitCodeFor(new PinRejectedError('x', 'locked')), 4);
    for (const code of [pkcs11js.CKR_PIN_INCORRECT, pkcs11js.CKR_PIN_INVALID, pkcs11js.CKR_PIN_LEN_RANGE]) assert.equal(exitCodeFor(ckr(code)), 3);
    for (const code of [pkcs11js.CKR_PIN_LOCKED, pkcs11js.CKR_PIN_EXPIRED]) assert.equal(exitCodeFor(ckr(code)), 4);
    assert.equal(exitCodeFor(new Error('wrapped', { cause: ckr(pkcs11js.CKR_PIN_LOCKED) })), 4);
  });

  it('anything else is 1; a PIN rejection is a TokenFatalError, so no retry loop takes it for a passing fault', () => {
    assert.equal(exitCodeFor(ckr(pkcs11js.CKR_GENERAL_ERROR)), 1);
    assert.equal(exitCodeFor(new TokenFatalError('key mismatch')), 1);
    assert.equal(exitCodeFor('boom'), 1);
    assert.ok(new PinRejectedError('x', 'refused') instanceof TokenFatalError);
    assert.deepEqual(failure(new PinRejectedError('token "a": login failed: CKR_PIN_INCORRECT', 'refused')), {
      message: 'ocsp-hsm: token "a": login failed: CKR_PIN_INCORRECT\n',
      exitCode: 3,
    });
  });
});
