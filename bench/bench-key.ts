// The signing key both live-signing references use: N logged-in sessions on the token and the key's handle.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { findPrivateKey } from '../src/hsm/keys';
import { findSlotByLabel, loadModule } from '../src/hsm/module';

export interface BenchKeySpec {
  modulePath: string;
  tokenLabel: string;
  pinFile: string;
  keyLabel: string;
  keyType: 'ec' | 'rsa';
  sessions: number;
}

export function openBenchKey(s: BenchKeySpec) {
  const p11 = loadModule(s.modulePath);
  const slot = findSlotByLabel(p11, s.tokenLabel)!;
  const sessions = Array.from({ length: s.sessions }, () => p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION));
  p11.C_Login(sessions[0]!, pkcs11js.CKU_USER, readFileSync(s.pinFile, 'utf8').trim());
  const key = findPrivateKey(p11, sessions[0]!, { label: s.keyLabel });
  const ec = s.keyType === 'ec';
  return {
    p11,
    sessions,
    key,
    mechanism: ec ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS,
    /** The same work per signature the daemon asks of the token: a digest for ECDSA, the data for RSA. */
    input: (data: Buffer) => (ec ? createHash('sha256').update(data).digest() : data),
  };
}
