// Builds a complete PKI on a fresh SoftHSM2 token: CA and responder keys inside the token, certificates on disk.
// Used by `ocsp-hsm demo` and by the native tests.
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { systemClock } from '../clock';
import { loadModule } from '../hsm/module';
import { Pkcs11Signer, findPrivateKey } from '../hsm/pkcs11-signer';
import { SessionPool } from '../hsm/session-pool';
import { algorithmForPublicKey } from '../hsm/signer';
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
  mkdirSync(dir, { recursive: true });
  const softhsmConf = writeSoftHsmConfig(dir);
  process.env.SOFTHSM2_CONF = softhsmConf;
  const modulePath = findSoftHsmModule();
  const p11 = loadModule(modulePath);
  const userPin = randomBytes(8).toString('hex');
  const userPinFile = join(dir, 'user.pin');
  writeFileSync(userPinFile, userPin + '\n', { mode: 0o600 });
  const slot = initToken(p11, tokenLabel, randomBytes(8).toString('hex'), userPin);
  const pool = new SessionPool(p11, slot, 1);
  pool.open(userPin);
  try {
    const built: BuiltCa[] = [];
    for (const [i, spec] of cas.entries()) built.push(await buildCa(dir, pool, spec, i, now));
    return { dir, softhsmConf, modulePath, tokenLabel, userPinFile, cas: built };
  } finally {
    pool.close();
  }
}

async function buildCa(dir: string, pool: SessionPool, spec: CaSpec, index: number, now: Date): Promise<BuiltCa> {
  const session = pool.anySession();
  const day = 86_400_000;
  const caKeyLabel = `${spec.name}-ca`;
  const caPub = generateKeyPair(pool.p11, session, spec.caKey, caKeyLabel, Buffer.from([index, 1]));
  const caSigner = new Pkcs11Signer(pool, findPrivateKey(pool, { label: caKeyLabel }), algorithmForPublicKey(caPub));
  const caCert = await issueCertificate({
    subjectCN: `${spec.name} Root CA`,
    organization: 'ocsp-hsm demo',
    publicKey: caPub,
    serial: 1n,
    notBefore: new Date(now.getTime() - day),
    notAfter: new Date(now.getTime() + 3650 * day),
    signer: caSigner,
    kind: 'ca',
  });
  const write = (name: string, c: LoadedCertificate) => {
    const file = join(dir, `${spec.name}-${name}.pem`);
    writeFileSync(file, toPem(c.der));
    return file;
  };
  const out: Partial<BuiltCa> = { name: spec.name, caCertFile: write('ca', caCert), caKeyLabel };
  if (spec.responderKey) {
    const label = `${spec.name}-responder`;
    const pub = generateKeyPair(pool.p11, session, spec.responderKey, label, Buffer.from([index, 2]));
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
export function pkiConfig(pki: BuiltPki, server: { port: number; pathPrefix?: string }): Record<string, unknown> {
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
