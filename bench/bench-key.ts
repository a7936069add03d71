// The signing key the benchmarks' references use: as the daemon signs (an HsmToken and a Pkcs11Signer, every
// PKCS#11 call in session threads), or one bare session for a raw loop in the calling thread.
import { readFileSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import { systemClock } from '../src/clock';
import { findPrivateKey } from '../src/hsm/keys';
import { findSlotByLabel, loadModule } from '../src/hsm/module';
import { Pkcs11Signer } from '../src/hsm/pkcs11-signer';
import { algorithmForPublicKey } from '../src/signing/signer';
import { HsmToken, NULL_OBSERVER, SILENT_LOG } from '../src/hsm/token';
import { readCertificate } from '../src/pki/certificate';

export interface BenchKeySpec {
  modulePath: string;
  tokenLabel: string;
  pinFile: string;
  keyLabel: string;
  /** The key's certificate: the token proves the key against it, as the daemon does. */
  certFile: string;
}

/** An HsmToken with `sessions` session threads and a signer on the key, as the daemon has without its limiter. */
export async function openBenchSigner(s: BenchKeySpec, sessions: number): Promise<{ signer: Pkcs11Signer; token: HsmToken }> {
  const pin = readFileSync(s.pinFile, 'utf8').trim();
  const token = new HsmToken({
    name: 'bench', describe: `token "${s.tokenLabel}"`, modulePath: s.modulePath, label: s.tokenLabel, sessions,
    pin: async () => pin, signTimeoutMs: 10_000, backoff: { initialMs: 100, maxMs: 1000 }, healthCheckMs: 0,
    clock: systemClock, observer: NULL_OBSERVER, log: SILENT_LOG,
  });
  const publicKey = readCertificate(s.certFile).x509.publicKey;
  const key = token.addKey({ ref: { label: s.keyLabel }, publicKey, algorithm: algorithmForPublicKey(publicKey), describe: s.keyLabel, certDescribe: s.certFile });
  await token.activate();
  return { signer: new Pkcs11Signer(token, key), token };
}

/** One logged-in session of this thread and the key's handle, with the mechanism and input size the daemon uses. */
export function openBenchSession(s: BenchKeySpec) {
  const p11 = loadModule(s.modulePath);
  const session = p11.C_OpenSession(findSlotByLabel(p11, s.tokenLabel)!, pkcs11js.CKF_SERIAL_SESSION);
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, readFileSync(s.pinFile, 'utf8').trim());
  } catch (e) {
    // Login is per application, not per session: another thread of this process did it.
    if ((e as pkcs11js.Pkcs11Error).code !== pkcs11js.CKR_USER_ALREADY_LOGGED_IN) throw e;
  }
  const key = findPrivateKey(p11, session, { label: s.keyLabel });
  const algorithm = algorithmForPublicKey(readCertificate(s.certFile).x509.publicKey);
  const ec = algorithm.keyType === 'ec';
  return {
    p11,
    session,
    key,
    mechanism: ec ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS,
    /** What the daemon hands the token per signature: a digest for ECDSA, the data (about a ResponseData) for RSA. */
    inputBytes: ec ? (algorithm.hash === 'sha256' ? 32 : 48) : 250,
    outLen: algorithm.maxSignatureBytes,
  };
}
