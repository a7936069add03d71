// The dependency rules of README "Architecture", checked on the sources: a test that fails when an import points
// the wrong way (http and source never reach the HSM code; hsm and store never reach the request path; nothing
// but cli imports cli).
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, it } from 'node:test';

const SRC = join(__dirname, '..', '..', 'src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

/** Top-level src/ packages each file imports (relative imports only). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/from '(\.[^']+)'/g)) {
    const target = relative(SRC, join(file, '..', m[1]!));
    if (!target.startsWith('..')) out.push(target.split('/')[0]!);
  }
  return out;
}

function violations(from: string, forbidden: string[]): string[] {
  return files(join(SRC, from)).flatMap((f) =>
    importsOf(f).filter((p) => forbidden.includes(p)).map((p) => `${relative(SRC, f)} imports src/${p}`),
  );
}

describe('dependencies point inward', () => {
  it('http and source import nothing of hsm (HSM refusals reach them as kinds of TryLaterError)', () => {
    assert.deepEqual([...violations('http', ['hsm']), ...violations('source', ['hsm'])], []);
  });
  it('hsm, signing and store import neither http nor source', () => {
    assert.deepEqual(['hsm', 'signing', 'store'].flatMap((d) => violations(d, ['http', 'source'])), []);
  });
  it('nothing outside cli imports cli', () => {
    const dirs = readdirSync(SRC).filter((d) => d !== 'cli' && statSync(join(SRC, d)).isDirectory());
    assert.deepEqual(dirs.flatMap((d) => violations(d, ['cli'])), []);
  });
  it('the check sees imports at all', () => {
    assert.ok(importsOf(join(SRC, 'http', 'ocsp-status.ts')).includes('ocsp'));
  });
});
