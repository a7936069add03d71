// Runs the real openssl CLI for test fixtures: a throwaway CA with a leaf, and OCSP requests it builds.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './temp';

/** stdout and stderr together (openssl ocsp reports verification on stderr); throws on a non-zero exit. */
export function openssl(args: string[], opts: { cwd?: string; input?: string } = {}): string {
  const r = spawnSync('openssl', args, { cwd: opts.cwd, input: opts.input, encoding: 'utf8', timeout: 30_000 });
  const out = `${r.stdout}${r.stderr}`;
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')} exited ${r.status}:\n${out}`);
  return out;
}

export interface OpensslPki {
  dir: string;
  caCert: string;
  caKey: string;
  leafCert: string;
  leafSerialHex: string;
}

/** A CA and one leaf (serial 0x0badcafe) made with `openssl req` / `openssl x509`, keys on disk. */
export function makeOpensslPki(name = 'Fixture CA'): OpensslPki {
  const dir = tempDir('openssl');
  const caKey = join(dir, 'ca.key');
  const caCert = join(dir, 'ca.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', caKey,
    '-out', caCert, '-days', '30', '-subj', `/CN=${name}`]);
  const leafKey = join(dir, 'leaf.key');
  const csr = join(dir, 'leaf.csr');
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', leafKey,
    '-out', csr, '-subj', '/CN=leaf.example']);
  const leafCert = join(dir, 'leaf.pem');
  openssl(['x509', '-req', '-in', csr, '-CA', caCert, '-CAkey', caKey, '-set_serial', '0x0badcafe', '-days', '10', '-out', leafCert]);
  return { dir, caCert, caKey, leafCert, leafSerialHex: 'badcafe' };
}

/** DER OCSPRequest built by `openssl ocsp -reqout`. */
export function opensslRequest(issuer: string, certs: string[], opts: { sha256?: boolean; nonce?: boolean } = {}): Buffer {
  const out = join(tempDir('req'), 'req.der');
  const args = ['ocsp', ...(opts.sha256 ? ['-sha256'] : []), '-issuer', issuer];
  for (const c of certs) args.push('-cert', c);
  args.push(opts.nonce ? '-nonce' : '-no_nonce', '-reqout', out);
  openssl(args);
  return readFileSync(out);
}

export function writeTemp(name: string, data: Buffer | string): string {
  const file = join(tempDir('tmp'), name);
  writeFileSync(file, data);
  return file;
}
