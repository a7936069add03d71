// Locates SoftHSM2 and writes a private SoftHSM2 config (one token directory per demo or test).
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { makePrivateDir, PRIVATE_FILE, writeFileWithMode } from '../file-modes';

const MODULE_CANDIDATES = [
  '/usr/lib/softhsm/libsofthsm2.so',
  '/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so',
  '/usr/local/lib/softhsm/libsofthsm2.so',
];

export function findSoftHsmModule(): string {
  const found = MODULE_CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new Error(
      `SoftHSM2 not found (looked in ${MODULE_CANDIDATES.join(', ')}); install it with: sudo apt-get install softhsm2`,
    );
  }
  return found;
}

const TEMPLATE = resolve(__dirname, '../../../softhsm/softhsm2.conf.in');

/** Writes dir/softhsm2.conf pointing at dir/tokens and returns its path (set SOFTHSM2_CONF to it). */
export function writeSoftHsmConfig(dir: string): string {
  const tokenDir = join(dir, 'tokens');
  makePrivateDir(tokenDir);
  const conf = join(dir, 'softhsm2.conf');
  writeFileWithMode(conf, readFileSync(TEMPLATE, 'utf8').replace('@TOKENDIR@', tokenDir), PRIVATE_FILE);
  return conf;
}
