// The live-signing peer: `openssl ocsp` as a responder for the bench CA, with a software key of the same type
// as the daemon's responder key, delegated by the same CA (its certificate issued through the CA key on the
// token), so it answers the very requests the daemon gets and its answers verify against the same trust anchor.
// It listens on every interface (it takes no address); the bench only ever sends to 127.0.0.1. A connection closed
// before its request line makes `openssl ocsp` 3.0 spin on it for ever (openssl/openssl#31129), which the end of a
// wrk run can do: the bench starts a fresh responder for each measurement.
import { ChildProcess, spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestCa, TestPki } from '../native-test/support/harness';
import { readCertificate, toPem } from '../src/pki/certificate';
import { issueCertificate } from '../src/pki/issue';
import { openBenchSigner } from './bench-key';

export interface OpensslResponder {
  url: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export interface OpensslPeer {
  responderCertFile: string;
  /** Starts a responder on a port of its own. */
  start(): Promise<OpensslResponder>;
}

/** openssl index.txt time: YYMMDDHHMMSSZ. */
function indexTime(d: Date): string {
  return d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*/, '$1$2$3$4$5$6Z');
}

/** The responder's key, certificate and index.txt in the PKI's directory. */
export async function opensslPeer(pki: TestPki, ca: TestCa, keyType: 'ec-p256' | 'rsa-2048', validityDays: number): Promise<OpensslPeer> {
  const dir = pki.dir;
  const { publicKey, privateKey } = keyType === 'ec-p256'
    ? generateKeyPairSync('ec', { namedCurve: 'prime256v1' })
    : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const caCert = readCertificate(ca.caCertFile);
  const { signer, token } = await openBenchSigner({ modulePath: pki.modulePath, tokenLabel: pki.tokenLabel, pinFile: pki.userPinFile, keyLabel: ca.caKeyLabel, certFile: ca.caCertFile }, 1);
  const now = Date.now();
  let cert;
  try {
    cert = await issueCertificate({
      subjectCN: `${ca.name} openssl OCSP responder`, publicKey, serial: 0x0551n, notBefore: new Date(now - 86_400_000),
      notAfter: new Date(now + 30 * 86_400_000), issuer: caCert, signer, kind: 'ocsp-responder',
    });
  } finally {
    await token.close();
  }
  const certFile = join(dir, 'openssl-responder.pem');
  const keyFile = join(dir, 'openssl-responder.key');
  writeFileSync(certFile, toPem(cert.der));
  writeFileSync(keyFile, privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  // The good certificate, as the daemon's store has it (serials in upper-case hex, as openssl ca writes them).
  const good = readCertificate(ca.good.file).x509;
  const index = join(dir, 'openssl-index.txt');
  writeFileSync(index, `V\t${indexTime(new Date(good.validTo))}\t\t${ca.good.serial.toUpperCase()}\tunknown\t/CN=good\n`);
  const args = ['ocsp', '-index', index, '-rsigner', certFile, '-rkey', keyFile, '-CA', ca.caCertFile, '-port', '0', '-ndays', String(validityDays), '-ignore_err'];
  return { responderCertFile: certFile, start: () => startResponder(args) };
}

async function startResponder(args: string[]): Promise<OpensslResponder> {
  const proc = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'ignore'] });
  // It prints its address on stdout and logs every request to stderr (discarded, as a quiet log level would).
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`openssl ocsp did not start: ${text}`));
    }, 10_000);
    const onData = (d: Buffer) => {
      text += d.toString();
      const m = /ACCEPT .*:(\d+) PID=/.exec(text);
      if (!m) return;
      clearTimeout(timer);
      proc.stdout!.off('data', onData);
      proc.stdout!.resume();
      resolve(Number(m[1]));
    };
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => reject(new Error(`openssl ocsp exited ${code}: ${text}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    proc,
    stop: async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    },
  };
}
