// CRLs signed inside SoftHSM2 with a test CA's own key, as the CA would sign them: this process opens the token too.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../src/clock';
import { Pkcs11Signer } from '../../src/hsm/pkcs11-signer';
import { algorithmForPublicKey } from '../../src/signing/signer';
import { HsmToken, NULL_OBSERVER, SILENT_LOG } from '../../src/hsm/token';
import { readCertificate } from '../../src/pki/certificate';
import type { CrlEntry } from '../../src/pki/crl';
import { issueCrl } from '../../src/pki/issue-crl';
import type { TestCa, TestPki } from './harness';

export interface HsmCrl {
  /** The CA named as the CRL's issuer. */
  ca: TestCa;
  /** Whose key signs it; default the CA's own (another CA's key makes a forgery). */
  signedBy?: TestCa;
  number: bigint;
  /** Makes it a delta CRL on this full CRL number. */
  base?: bigint;
  entries: CrlEntry[];
  /** Freshest CRL URLs. */
  fresh?: string[];
}

export interface HsmCrlIssuer {
  /** Issues the CRL (thisUpdate now in whole seconds, nextUpdate an hour later) as PEM in the PKI's dir; returns the file. */
  write(name: string, crl: HsmCrl): Promise<string>;
  close(): Promise<void>;
}

/** Opens the PKI's token in this process. SoftHSM2 reads SOFTHSM2_CONF once per process: one PKI per process. */
export function hsmCrlIssuer(pki: TestPki): HsmCrlIssuer {
  process.env.SOFTHSM2_CONF = pki.softhsmConf;
  const pin = readFileSync(pki.userPinFile, 'utf8').trim();
  const token = new HsmToken({
    name: 't', describe: 'token', modulePath: pki.modulePath, label: pki.tokenLabel, sessions: 2, pin: async () => pin,
    signTimeoutMs: 10_000, backoff: { initialMs: 100, maxMs: 1000 }, healthCheckMs: 0, clock: systemClock, observer: NULL_OBSERVER, log: SILENT_LOG,
  });
  const signers = new Map(
    pki.cas.map((ca) => {
      const cert = readCertificate(ca.caCertFile);
      const algorithm = algorithmForPublicKey(cert.x509.publicKey);
      const key = token.addKey({ ref: { label: ca.caKeyLabel }, publicKey: cert.x509.publicKey, algorithm, describe: ca.caKeyLabel, certDescribe: 'cert' });
      return [ca.name, new Pkcs11Signer(token, key)];
    }),
  );
  const activated = token.activate();
  return {
    async write(name, o) {
      await activated;
      const thisUpdate = new Date(Math.floor(Date.now() / 1000) * 1000);
      const der = await issueCrl({
        issuer: readCertificate(o.ca.caCertFile), signer: signers.get((o.signedBy ?? o.ca).name)!, thisUpdate,
        nextUpdate: new Date(thisUpdate.getTime() + 3_600_000), crlNumber: o.number,
        ...(o.base !== undefined ? { baseCrlNumber: o.base } : {}), ...(o.fresh ? { freshestCrlUrls: o.fresh } : {}), entries: o.entries,
      });
      const file = join(pki.dir, name);
      writeFileSync(file, `-----BEGIN X509 CRL-----\n${der.toString('base64').replace(/(.{64})/g, '$1\n')}\n-----END X509 CRL-----\n`);
      return file;
    },
    close: () => token.close(),
  };
}
