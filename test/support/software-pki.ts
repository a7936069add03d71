// A CA, delegated responder and leaves with software keys, issued by our own issuer code; for unit tests.
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { issueCertificate } from '../../src/pki/issue';
import { LoadedCertificate, toPem } from '../../src/pki/certificate';
import { KeyObjectSigner, softwareSigner } from './key-signer';
import { tempDir } from './temp';

export interface SoftwarePki {
  dir: string;
  ca: LoadedCertificate;
  caSigner: KeyObjectSigner;
  responder: LoadedCertificate;
  responderSigner: KeyObjectSigner;
  leaves: LoadedCertificate[];
  files: { ca: string; responder: string; leaves: string[] };
}

export async function softwarePki(kind: 'ec-p256' | 'ec-p384' | 'rsa-2048' = 'ec-p256', leafSerials = [0x1001n, 0x1002n, 0x1003n]): Promise<SoftwarePki> {
  const now = Date.now();
  const caSigner = softwareSigner(kind);
  const ca = await issueCertificate({
    subjectCN: 'Unit CA', publicKey: caSigner.publicKey, serial: 1n, notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 86_400_000 * 30), signer: caSigner, kind: 'ca',
  });
  const responderSigner = softwareSigner(kind);
  const responder = await issueCertificate({
    subjectCN: 'Unit Responder', publicKey: responderSigner.publicKey, serial: 2n, notBefore: new Date(now - 86_400_000),
    notAfter: new Date(now + 86_400_000 * 30), issuer: ca, signer: caSigner, kind: 'ocsp-responder',
  });
  const leaves = [];
  for (const serial of leafSerials) {
    leaves.push(await issueCertificate({
      subjectCN: `leaf-${serial}`, publicKey: generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).publicKey, serial,
      notBefore: new Date(now - 86_400_000), notAfter: new Date(now + 86_400_000 * 10), issuer: ca, signer: caSigner, kind: 'end-entity',
    }));
  }
  const dir = tempDir('swpki');
  const write = (name: string, c: LoadedCertificate) => {
    const f = join(dir, name);
    writeFileSync(f, toPem(c.der));
    return f;
  };
  return {
    dir, ca, caSigner, responder, responderSigner, leaves,
    files: { ca: write('ca.pem', ca), responder: write('responder.pem', responder), leaves: leaves.map((l, i) => write(`leaf${i}.pem`, l)) },
  };
}
