// The installed package's version, for `ocsp-hsm --version`: read from its package.json, wherever it is run from.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/**
 * The version in the nearest package.json named "ocsp-hsm" above this file (dist/src/cli/ when built), never
 * the one in the working directory.
 */
export function packageVersion(from: string = __dirname): string {
  for (let dir = from, up = 0; up < 6; dir = dirname(dir), up++) {
    let pkg: { name?: unknown; version?: unknown };
    try {
      pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as typeof pkg;
    } catch {
      continue;
    }
    if (pkg.name === 'ocsp-hsm' && typeof pkg.version === 'string') return pkg.version;
  }
  throw new Error(`no package.json of ocsp-hsm above ${from}`);
}
