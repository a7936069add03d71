// An empty SoftHSM2 token (or several) in a temp dir of its own, for tests that start from nothing, and a way to
// look at the token from the test process with pkcs11js. Sets this process's SOFTHSM2_CONF: one per test file.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as pkcs11js from 'pkcs11js';
import { findSoftHsmModule, writeSoftHsmConfig } from '../../src/demo/softhsm';
import { findSlotByLabel, finalizeModules, Handle, loadModule, Pkcs11 } from '../../src/hsm/module';
import { initToken } from '../../src/hsm/token-admin';
import { tempDir } from '../../test/support/temp';

export interface FreshToken {
  dir: string;
  softhsmConf: string;
  modulePath: string;
  tokenLabel: string;
  pin: string;
  /** The PIN in a file (mode 0600), for the config's pin.file. */
  pinFile: string;
  env: NodeJS.ProcessEnv;
}

/** Initializes `labels` as tokens (same user PIN) in a new SoftHSM2 token directory; the first is the one returned. */
export function freshTokens(prefix: string, labels: string[]): FreshToken {
  const dir = tempDir(prefix);
  const softhsmConf = writeSoftHsmConfig(dir);
  process.env.SOFTHSM2_CONF = softhsmConf;
  const modulePath = findSoftHsmModule();
  const pin = randomBytes(8).toString('hex');
  const pinFile = join(dir, 'user.pin');
  writeFileSync(pinFile, pin + '\n', { mode: 0o600 });
  // Initialized here rather than with softhsm2-util: no PIN on any process's command line.
  const p11 = loadModule(modulePath);
  for (const label of labels) initToken(p11, label, randomBytes(8).toString('hex'), pin);
  finalizeModules();
  return { dir, softhsmConf, modulePath, tokenLabel: labels[0]!, pin, pinFile, env: { ...process.env, SOFTHSM2_CONF: softhsmConf } };
}

/**
 * Runs `fn` on a fresh logged-in session (module initialized anew, so objects other processes made are seen),
 * then finalizes the module again.
 */
export function onToken<T>(t: FreshToken, fn: (p11: Pkcs11, session: Handle) => T): T {
  const p11 = loadModule(t.modulePath);
  try {
    const session = p11.C_OpenSession(findSlotByLabel(p11, t.tokenLabel)!, pkcs11js.CKF_SERIAL_SESSION);
    p11.C_Login(session, pkcs11js.CKU_USER, t.pin);
    return fn(p11, session);
  } finally {
    finalizeModules();
  }
}

export function findObjects(p11: Pkcs11, session: Handle, template: pkcs11js.Template): Handle[] {
  p11.C_FindObjectsInit(session, template);
  try {
    return p11.C_FindObjects(session, 100);
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

/** Boolean attributes of an object, by CKA_ number. */
export function bools(p11: Pkcs11, session: Handle, h: Handle, types: number[]): boolean[] {
  return p11.C_GetAttributeValue(session, h, types.map((type) => ({ type }))).map((a) => (a.value as Buffer)[0] === 1);
}
