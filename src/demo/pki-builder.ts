// Builds a complete PKI on a fresh SoftHSM2 token: CA and responder keys inside the token, certificates on disk.
// Used by `ocsp-hsm demo` and by the native tests.
import { generateKeyPairSync, KeyObject, randomBytes } from 'node:crypto';
import * as pkcs11js from 'pkcs11js';
import { join, relative } from 'node:path';
import { systemClock } from '../clock';
import { makePrivateDir, PRIVATE_FILE, PUBLIC_FILE, writeFileWithMode } from '../file-modes';
import { Handle, loadModule, Pkcs11 } from '../hsm/module';
import { Pkcs11Signer } from '../hsm/pkcs11-signer';
import { HsmToken, NULL_OBSERVER, SILENT_LOG } from '../hsm/token';
import { algorithmForPublicKey } from '../signing/signer';
import { generateKeyPair, initToken, KeySpec } from '../hsm/token-admin';
import { issueCertificate } from '../pki/issue';
import { LoadedCertificate, toPem } from '../pki/certificate';
import { findSoftHsmModule, writeSoftHsmConfig } from './softhsm';

export interface CaSpec {
  name: string;
  caKey: KeySpec;
  /** Delegated responder key; omitted when the CA signs responses itself. */
  responderKey?: KeySpec;
}

export interface Leaf {
  file: string;
  serial: string;
  cert: LoadedCertificate;
}

export interface BuiltCa {
  name: string;
  caCertFile: string;
  caKeyLabel: string;
  responderCertFile?: string;
  responderKeyLabel?: string;
  good: Leaf;
  revoked: Leaf;
  unissued: Leaf;
}

export interface BuiltPki {
  dir: string;
  softhsmConf: string;
  modulePath: string;
  tokenLabel: string;
  userPinFile: string;
  cas: BuiltCa[];
}

/** Sets SOFTHSM2_CONF for this process (SoftHSM2 reads it at C_Initialize) and builds the PKI under `dir`. */
export async function buildPki(dir: string, tokenLabel: string, cas: CaSpec[], now = systemClock.now()): Promise<BuiltPki> {
  makePrivateDir(dir);
  const softhsmConf = writeSoftHsmConfig(dir);
  process.env.SOFTHSM2_CONF = softhsmConf;
  const modulePath = findSoftHsmModule();
  const p11 = loadModule(modulePath);
  const userPin = randomBytes(8).toString('hex');
  const userPinFile = join(dir, 'user.pin');
  writeFileWithMode(userPinFile, userPin + '\n', PRIVATE_FILE);
  const slot = initToken(p11, tokenLabel, randomBytes(8).toString('hex'), userPin);
  const keys = generateKeys(p11, slot, userPin, cas);
  // Certificates are signed the way the daemon signs responses: through an HsmToken.
  const token = new HsmToken({
    name: 'builder', describe: `token "${tokenLabel}"`, modulePath, label: tokenLabel, sessions: 2,
    pin: async () => userPin, signTimeoutMs: 60_000, backoff: { initialMs: 100, maxMs: 1000 }, healthCheckMs: 0,
    clock: systemClock, observer: NULL_OBSERVER, log: SILENT_LOG,
  });
  const signers = keys.map((k) => {
    const algorithm = algorithmForPublicKey(k.caPub);
    const key = token.addKey({ ref: { label: `${k.spec.name}-ca` }, publicKey: k.caPub, algorithm, describe: `${k.spec.name}-ca`, certDescribe: 'its public key' });
    return new Pkcs11Signer(token, key);
  });
  await token.activate();
  try {
    const built: BuiltCa[] = [];
    for (const [i, k] of keys.entries()) built.push(await buildCa(dir, k, signers[i]!, now));
    return { dir, softhsmConf, modulePath, tokenLabel, userPinFile, cas: built };
  } finally {
    await token.close();
  }
}

interface GeneratedKeys {
  spec: CaSpec;
  caPub: KeyObject;
  responderPub: KeyObject | undefined;
}

function generateKeys(p11: Pkcs11, slot: Handle, pin: string, cas: CaSpec[]): GeneratedKeys[] {
  const session = p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION | pkcs11js.CKF_RW_SESSION);
  try {
    p11.C_Login(session, pkcs11js.CKU_USER, pin);
    return cas.map((spec, i) => ({
      spec,
      caPub: generateKeyPair(p11, session, spec.caKey, `${spec.name}-ca`, Buffer.from([i, 1])),
      responderPub: spec.responderKey
        ? generateKeyPair(p11, session, spec.responderKey, `${spec.name}-responder`, Buffer.from([i, 2]))
        : undefined,
    }));
  } finally {
    p11.C_Logout(session);
    p11.C_CloseSession(session);
  }
}

async function buildCa(dir: string, k: GeneratedKeys, caSigner: Pkcs11Signer, now: Date): Promise<BuiltCa> {
  const spec = k.spec;
  const day = 86_400_000;
  const caKeyLabel = `${spec.name}-ca`;
  const caCert = await issueCertificate({
    subjectCN: `${spec.name} Root CA`,
    organization: 'ocsp-hsm demo',
    publicKey: k.caPub,
    serial: 1n,
    notBefore: new Date(now.getTime() - day),
    notAfter: new Date(now.getTime() + 3650 * day),
    signer: caSigner,
    kind: 'ca',
  });
  const write = (name: string, c: LoadedCertificate) => {
    const file = join(dir, `${spec.name}-${name}.pem`);
    writeFileWithMode(file, toPem(c.der), PUBLIC_FILE);
    return file;
  };
  const out: Partial<BuiltCa> = { name: spec.name, caCertFile: write('ca', caCert), caKeyLabel };
  if (k.responderPub) {
    const label = `${spec.name}-responder`;
    const pub = k.responderPub;
    const responder = await issueCertificate({
      subjectCN: `${spec.name} OCSP Responder`,
      organization: 'ocsp-hsm demo',
      publicKey: pub,
      serial: 2n,
      notBefore: new Date(now.getTime() - day),
      notAfter: new Date(now.getTime() + 365 * day),
      issuer: caCert,
      signer: caSigner,
      kind: 'ocsp-responder',
    });
    out.responderCertFile = write('responder', responder);
    out.responderKeyLabel = label;
  }
  // Subscriber keys are ordinary software keys: only CA and responder keys belong in the HSM.
  const leaf = async (name: 'good' | 'revoked' | 'unissued', serial: bigint): Promise<Leaf> => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
    const cert = await issueCertificate({
      subjectCN: `${name}.${spec.name}.example`,
      publicKey,
      serial,
      notBefore: new Date(now.getTime() - day),
      notAfter: new Date(now.getTime() + 90 * day),
      issuer: caCert,
      signer: caSigner,
      kind: 'end-entity',
    });
    return { file: write(name, cert), serial: serial.toString(16), cert };
  };
  out.good = await leaf('good', 0x1001n);
  out.revoked = await leaf('revoked', 0x1002n);
  out.unissued = await leaf('unissued', 0x1003n);
  return out as BuiltCa;
}

/** A config object (written as YAML into pki.dir) that serves a built PKI; paths are relative to pki.dir. */
export function pkiConfig(pki: BuiltPki, server: { port: number; pathPrefix?: string; workers?: number }): Record<string, unknown> {
  const rel = (p: string) => relative(pki.dir, p);
  return {
    server: { host: '127.0.0.1', ...server },
    dataDir: 'data',
    tokens: [
      { name: 'main', module: pki.modulePath, tokenLabel: pki.tokenLabel, pin: { file: rel(pki.userPinFile) }, sessions: 4 },
    ],
    cas: pki.cas.map((ca) => ({
      name: ca.name,
      certificate: rel(ca.caCertFile),
      signer: {
        token: 'main',
        key: { label: ca.responderKeyLabel ?? ca.caKeyLabel },
        ...(ca.responderCertFile ? { certificate: rel(ca.responderCertFile) } : {}),
      },
    })),
  };
}
