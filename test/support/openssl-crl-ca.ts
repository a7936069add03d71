// An OpenSSL CA (`openssl ca`, keys on disk) that issues certificates, revokes them and generates CRLs, for CRL tests.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from './openssl';
import { opensslCaDir } from './openssl-ca-dir';

export interface OpensslCrlCa {
  dir: string;
  caCert: string;
  caKey: string;
  /** Leaf certificate files; serials 1001, 1002, ... in order. */
  leaves: string[];
  revoke(leaf: string, how: string[]): void;
  /** Rewrites the revocation reason of a serial in index.txt (openssl cannot revoke twice). */
  setIndexReason(serialHex: string, reason: string): void;
  /** `openssl ca -gencrl` (next CRL number), PEM; with the Freshest CRL extension when the CA has one. */
  gencrl(name: string, extra?: string[]): string;
  /** `openssl crl -gendelta`: the delta CRL from `base` to `newer`, signed with the CA key, PEM. */
  gendelta(base: string, newer: string, name: string): string;
}

export function makeOpensslCrlCa(o: { cn: string; leaves?: number; freshestCrl?: string }): OpensslCrlCa {
  const { dir, cnf, caKey, caCert } = opensslCaDir('crlca', {
    cn: o.cn,
    serial: '1001',
    crlDays: 1,
    caDefault: ['crl_extensions = crl_ext'],
    sections: [
      '[crl_ext]', 'authorityKeyIdentifier = keyid:always',
      ...(o.freshestCrl ? [`freshestCRL = URI:${o.freshestCrl}, URI:ldap://ldap.example/cn=delta`] : []),
    ],
  });
  const leaves: string[] = [];
  for (let n = 1; n <= (o.leaves ?? 3); n++) {
    const csr = join(dir, `leaf${n}.csr`);
    openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, `leaf${n}.key`), '-out', csr, '-subj', `/CN=leaf${n}`]);
    const out = join(dir, `leaf${n}.pem`);
    openssl(['ca', '-batch', '-config', cnf, '-in', csr, '-out', out]);
    leaves.push(out);
  }
  return {
    dir, caCert, caKey, leaves,
    revoke: (leaf, how) => void openssl(['ca', '-config', cnf, '-revoke', leaf, ...how]),
    setIndexReason(serialHex, reason) {
      const index = join(dir, 'index.txt');
      const lines = readFileSync(index, 'utf8').split('\n').map((l) => {
        const f = l.split('\t');
        if (f[3]?.toLowerCase() !== serialHex.toLowerCase()) return l;
        f[2] = `${f[2]!.split(',')[0]},${reason}`;
        return f.join('\t');
      });
      writeFileSync(index, lines.join('\n'));
    },
    gencrl(name, extra = []) {
      const out = join(dir, name);
      openssl(['ca', '-config', cnf, '-gencrl', '-out', out, ...extra]);
      return out;
    },
    gendelta(base, newer, name) {
      const out = join(dir, name);
      openssl(['crl', '-in', base, '-gendelta', newer, '-key', caKey, '-sha256', '-out', out]);
      return out;
    },
  };
}
