// `ocsp-hsm demo`: a working responder in one command: SoftHSM2 token, demo CA, certificates, store, then serve.
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { systemClock } from '../clock';
import { loadConfig } from '../config/load';
import { PRIVATE_FILE, writeFileWithMode } from '../file-modes';
import { finalizeModules } from '../hsm/module';
import { buildPki, BuiltCa } from '../demo/pki-builder';
import { openStore } from './store';
import { serve } from './serve';

// The user-facing demo config; the files it names are the ones buildPki writes for CA "demo".
const DEMO_TEMPLATE = resolve(__dirname, '../../../config/demo.yaml');

export interface DemoOptions {
  dir: string;
  port: number;
  setupOnly: boolean;
  out: (line: string) => void;
}

export async function demo(o: DemoOptions): Promise<void> {
  const dir = resolve(o.dir);
  const configFile = join(dir, 'config.yaml');
  if (existsSync(configFile)) {
    process.env.SOFTHSM2_CONF = join(dir, 'softhsm2.conf');
    o.out(`Using the demo in ${rel(dir)} (delete it to start over).`);
  } else {
    // config.yaml is written last: without it, a previous set-up was interrupted.
    rmSync(dir, { recursive: true, force: true });
    o.out(`Creating the demo in ${rel(dir)}: SoftHSM2 token, CA and responder keys inside it, certificates...`);
    const pki = await buildPki(dir, 'ocsp-hsm-demo', [{ name: 'demo', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
    finalizeModules();
    const config = parse(readFileSync(DEMO_TEMPLATE, 'utf8'));
    config.server.port = o.port;
    config.tokens[0].module = pki.modulePath;
    writeFileWithMode(configFile + '.tmp', stringify(config), PRIVATE_FILE);
    await recordStatuses(configFile + '.tmp', pki.cas[0]!);
    renameSync(configFile + '.tmp', configFile);
  }
  printCommands(o, dir, o.port);
  if (!o.setupOnly) await serve(loadConfig(configFile), { port: o.port });
}

async function recordStatuses(configFile: string, ca: BuiltCa): Promise<void> {
  const store = await openStore(loadConfig(configFile), systemClock);
  try {
    // The unissued certificate is deliberately not recorded: it is answered "unknown".
    await store.putCertificates([
      { ca: ca.name, serial: ca.good.serial, status: 'good', notAfter: new Date(ca.good.cert.x509.validTo) },
      {
        ca: ca.name,
        serial: ca.revoked.serial,
        status: 'revoked',
        revokedAt: new Date(systemClock.now().getTime() - 3_600_000),
        reason: 'keyCompromise',
        notAfter: new Date(ca.revoked.cert.x509.validTo),
      },
    ]);
  } finally {
    await store.close();
  }
}

function printCommands(o: DemoOptions, dir: string, port: number): void {
  const f = (name: string) => rel(join(dir, `demo-${name}.pem`));
  const url = `http://127.0.0.1:${port}`;
  const trust = `-issuer ${f('ca')} -CAfile ${f('ca')} -url ${url}`;
  const base = `openssl ocsp ${trust}`;
  o.out('');
  o.out('Query the responder with OpenSSL (each prints "Response verify OK" and the status):');
  o.out(`  ${base} -cert ${f('good')}`);
  o.out(`  ${base} -cert ${f('revoked')}`);
  o.out(`  ${base} -cert ${f('unissued')}`);
  // openssl applies -sha256 only to the -cert options that follow it.
  o.out(`  openssl ocsp -sha256 ${trust} -cert ${f('good')} -nonce`);
  o.out(`  ${base} -cert ${f('good')} -cert ${f('revoked')} -cert ${f('unissued')}`);
  o.out('');
}

function rel(p: string): string {
  const r = relative(process.cwd(), p);
  return r.startsWith('..') ? p : r || '.';
}
