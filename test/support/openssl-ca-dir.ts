// An `openssl ca` working directory for tests, as operators run it: database, serial, optionally a CRL number, a
// config whose policy accepts any commonName, and a self-signed EC P-256 CA (ca.key, ca.pem) named `cn`.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openssl } from './openssl';
import { tempDir } from './temp';

export interface OpensslCaDir {
  dir: string;
  cnf: string;
  caKey: string;
  caCert: string;
}

export function opensslCaDir(
  prefix: string,
  o: { cn: string; serial: string; crlDays?: number; caDefault?: string[]; sections?: string[] },
): OpensslCaDir {
  const dir = tempDir(prefix);
  mkdirSync(join(dir, 'newcerts'));
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), `${o.serial}\n`);
  const crl = o.crlDays !== undefined;
  if (crl) writeFileSync(join(dir, 'crlnumber'), '01\n');
  const cnf = join(dir, 'ca.cnf');
  writeFileSync(cnf, [
    '[ca]', 'default_ca = CA_default', '[CA_default]', `dir = ${dir}`, 'database = $dir/index.txt',
    'new_certs_dir = $dir/newcerts', 'certificate = $dir/ca.pem', 'private_key = $dir/ca.key', 'serial = $dir/serial',
    ...(crl ? ['crlnumber = $dir/crlnumber', `default_crl_days = ${o.crlDays}`] : []),
    'default_md = sha256', 'policy = policy_any', 'default_days = 30', 'unique_subject = no', ...(o.caDefault ?? []),
    '[policy_any]', 'commonName = supplied', ...(o.sections ?? []), '',
  ].join('\n'));
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey, '-out', caCert, '-days', '60', '-subj', `/CN=${o.cn}`]);
  return { dir, cnf, caKey, caCert };
}
