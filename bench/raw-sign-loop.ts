// The reference for live signing: pkcs11js async C_Sign in a tight loop on N sessions, same key, nothing else.
// usage: node raw-sign-loop.js '<json {modulePath, tokenLabel, pinFile, keyLabel, keyType, sessions, durationMs, dataBytes}>'
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { findPrivateKey } from '../src/hsm/keys';
import { findSlotByLabel, loadModule } from '../src/hsm/module';

interface Spec {
  modulePath: string;
  tokenLabel: string;
  pinFile: string;
  keyLabel: string;
  keyType: 'ec' | 'rsa';
  sessions: number;
  durationMs: number;
  dataBytes: number;
}

async function main(): Promise<void> {
  const s = JSON.parse(process.argv[2]!) as Spec;
  const p11 = loadModule(s.modulePath);
  const slot = findSlotByLabel(p11, s.tokenLabel)!;
  const sessions = Array.from({ length: s.sessions }, () => p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION));
  p11.C_Login(sessions[0]!, pkcs11js.CKU_USER, readFileSync(s.pinFile, 'utf8').trim());
  const key = findPrivateKey(p11, sessions[0]!, { label: s.keyLabel });
  const data = randomBytes(s.dataBytes);
  // The same work per signature the daemon asks of the token: a digest for ECDSA, the data for RSA.
  const input = s.keyType === 'ec' ? createHash('sha256').update(data).digest() : data;
  const mechanism = s.keyType === 'ec' ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS;
  let count = 0;
  const end = performance.now() + s.durationMs;
  const start = performance.now();
  await Promise.all(
    sessions.map(async (session) => {
      while (performance.now() < end) {
        p11.C_SignInit(session, { mechanism }, key);
        await p11.C_SignAsync(session, input, Buffer.alloc(512));
        count++;
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  process.stdout.write(JSON.stringify({ signsPerSecond: count / seconds }));
  p11.C_Logout(sessions[0]!);
  p11.C_Finalize();
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
