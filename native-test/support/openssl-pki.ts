// Builds CA hierarchies with the openssl command line for native tests: file keys for the CAs that only issue,
// SoftHSM2-generated keys (token-keys.ts) for every key that signs OCSP responses.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { findSoftHsmModule, writeSoftHsmConfig } from '../../src/demo/softhsm';

export function openssl(args: string[], cwd?: string): string {
  const r = spawnSync('openssl', args, { encoding: 'utf8', timeout: 30_000, ...(cwd ? { cwd } : {}) });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

const EXTENSIONS = `[ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[ocsp]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=OCSPSigning
noCheck=ignored
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[leaf]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
`;

export type Kind = 'ca' | 'ocsp' | 'leaf';

/** A directory of openssl-made certificates; keys named `token:<label>` live in the SoftHSM2 token. */
export class OpensslPki {
  readonly ext: string;
  readonly softhsmConf: string;
  readonly modulePath = findSoftHsmModule();
  readonly tokenLabel = `multi-${process.pid}`;
  readonly userPinFile: string;
  private serial = 0x5000;

  constructor(readonly dir: string) {
    mkdirSync(dir, { recursive: true });
    this.ext = join(dir, 'ext.cnf');
    writeFileSync(this.ext, EXTENSIONS);
    this.softhsmConf = writeSoftHsmConfig(dir);
    this.userPinFile = join(dir, 'user.pin');
    writeFileSync(this.userPinFile, randomBytes(8).toString('hex') + '\n', { mode: 0o600 });
  }

  path(name: string): string {
    return join(this.dir, name);
  }

  /** Generates the token's keys (labels) inside SoftHSM2, public halves as <label>.pub.pem. */
  tokenKeys(labels: string[]): void {
    const r = spawnSync(process.execPath, [join(__dirname, 'token-keys.js'), this.dir, this.tokenLabel, this.userPinFile, JSON.stringify(labels)], {
      encoding: 'utf8', timeout: 60_000, env: { ...process.env, SOFTHSM2_CONF: this.softhsmConf },
    });
    if (r.status !== 0) throw new Error(`token-keys failed: ${r.stderr}`);
  }

  /** An EC P-256 key file <name>.key. */
  fileKey(name: string): string {
    const f = this.path(`${name}.key`);
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', f]);
    return f;
  }

  selfSignedCa(name: string, cn: string): { cert: string; key: string } {
    const key = this.fileKey(name);
    const cert = this.path(`${name}.pem`);
    openssl(['req', '-x509', '-new', '-key', key, '-subj', `/CN=${cn}`, '-days', '3650', '-sha256', '-extensions', 'ca', '-config', this.reqConfig(), '-out', cert]);
    return { cert, key };
  }

  /**
   * A certificate for `publicKey` (a .pub.pem or a key file) issued by `issuer`; returns its file and serial
   * (lowercase hex, as the store keeps it).
   */
  issue(name: string, cn: string, publicKey: string, issuer: { cert: string; key: string }, kind: Kind, days = 365): { file: string; serial: string } {
    const file = this.path(`${name}.pem`);
    const serial = (this.serial++).toString(16);
    if (!publicKey.endsWith('.pub.pem')) {
      const pub = publicKey.replace(/\.key$/, '') + '.pub.pem';
      openssl(['pkey', '-in', publicKey, '-pubout', '-out', pub]);
      publicKey = pub;
    }
    openssl([
      'x509', '-new', '-subj', `/CN=${cn}`, '-force_pubkey', publicKey, '-CA', issuer.cert, '-CAkey', issuer.key,
      '-days', String(days), '-sha256', '-set_serial', `0x${serial}`, '-extfile', this.ext, '-extensions', kind, '-out', file,
    ]);
    return { file, serial };
  }

  /** An end-entity certificate valid between two dates (e.g. long expired), through `openssl ca`. */
  issueDated(name: string, cn: string, issuer: { cert: string; key: string }, start: string, end: string): { file: string; serial: string } {
    const caDir = this.path(`ca-${name}`);
    mkdirSync(join(caDir, 'new'), { recursive: true });
    writeFileSync(join(caDir, 'index.txt'), '');
    const serial = (this.serial++).toString(16);
    writeFileSync(join(caDir, 'serial'), serial.length % 2 ? `0${serial}\n` : `${serial}\n`);
    const cnf = join(caDir, 'ca.cnf');
    writeFileSync(cnf, `[ca]\ndefault_ca=d\n[d]\ndatabase=${caDir}/index.txt\nnew_certs_dir=${caDir}/new\nserial=${caDir}/serial\ndefault_md=sha256\npolicy=p\nunique_subject=no\ncopy_extensions=none\n[p]\ncommonName=supplied\n`);
    const key = this.fileKey(name);
    const csr = join(caDir, 'req.csr');
    openssl(['req', '-new', '-key', key, '-subj', `/CN=${cn}`, '-out', csr]);
    const file = this.path(`${name}.pem`);
    openssl(['ca', '-batch', '-config', cnf, '-cert', issuer.cert, '-keyfile', issuer.key, '-in', csr, '-startdate', start, '-enddate', end, '-notext', '-extfile', this.ext, '-extensions', 'leaf', '-out', file]);
    return { file, serial };
  }

  private reqConfig(): string {
    const f = this.path('req.cnf');
    writeFileSync(f, `[req]\ndistinguished_name=dn\n[dn]\n${EXTENSIONS}`);
    return f;
  }
}
