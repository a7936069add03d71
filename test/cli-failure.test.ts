import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { parseArgs } from 'node:util';
import { failure, UsageError } from '../src/cli/usage';

describe('CLI failures', () => {
  it('an error with a numeric code (a PKCS#11 CKR) is reported with its message, exit 1', () => {
    const e = Object.assign(new Error('CKR_GENERAL_ERROR'), { code: 5 });
    assert.deepEqual(failure(e), { message: 'ocsp-hsm: CKR_GENERAL_ERROR\n', exitCode: 1 });
  });
  it('bad arguments exit 2 with a hint', () => {
    assert.equal(failure(new UsageError('unknown command "x"')).exitCode, 2);
    let parseError: unknown;
    try {
      parseArgs({ args: ['--nope'], options: {}, strict: true });
    } catch (e) {
      parseError = e;
    }
    const f = failure(parseError);
    assert.equal(f.exitCode, 2);
    assert.match(f.message, /--nope[\s\S]*ocsp-hsm --help/);
  });
  it('something thrown that is not an Error still gets a message', () => {
    assert.deepEqual(failure('boom'), { message: 'ocsp-hsm: boom\n', exitCode: 1 });
  });
});
