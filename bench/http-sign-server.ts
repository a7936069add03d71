// A second reference for live signing: the least a Node HTTP responder can do per request. Bare node:http,
// read the body, digest it, one pkcs11js async signature on a free session, send the raw signature back. No
// OCSP parsing or building, no limiter, no metrics. It shares the 2 cores with wrk and SoftHSM2 exactly as the
// daemon does, so raw loop -> this -> daemon separates the machine's ceiling from the daemon's own cost.
// usage: node http-sign-server.js '<json as raw-sign-loop, without durationMs>'; prints {"port":N}, runs until killed
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import * as pkcs11js from 'pkcs11js';
import { findPrivateKey } from '../src/hsm/keys';
import { findSlotByLabel, loadModule } from '../src/hsm/module';

interface Spec {
  modulePath: string;
  tokenLabel: string;
  pinFile: string;
  keyLabel: string;
  keyType: 'ec' | 'rsa';
  sessions: number;
}

const s = JSON.parse(process.argv[2]!) as Spec;
const p11 = loadModule(s.modulePath);
const slot = findSlotByLabel(p11, s.tokenLabel)!;
const free = Array.from({ length: s.sessions }, () => p11.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION));
p11.C_Login(free[0]!, pkcs11js.CKU_USER, readFileSync(s.pinFile, 'utf8').trim());
const key = findPrivateKey(p11, free[0]!, { label: s.keyLabel });
const mechanism = s.keyType === 'ec' ? pkcs11js.CKM_ECDSA : pkcs11js.CKM_SHA256_RSA_PKCS;
const waiting: ((session: Buffer) => void)[] = [];

async function sign(data: Buffer): Promise<Buffer> {
  const input = s.keyType === 'ec' ? createHash('sha256').update(data).digest() : data;
  const session = free.pop() ?? (await new Promise<Buffer>((r) => waiting.push(r)));
  try {
    p11.C_SignInit(session, { mechanism }, key);
    return await p11.C_SignAsync(session, input, Buffer.alloc(512));
  } finally {
    const next = waiting.shift();
    if (next) next(session);
    else free.push(session);
  }
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    sign(Buffer.concat(chunks)).then(
      (sig) => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': sig.length }).end(sig),
      () => res.writeHead(500).end(),
    );
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
