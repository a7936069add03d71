// The live-signing reference: the least a Node HTTP responder can do per request while signing the way the daemon
// does. Bare node:http reads the body and answers it with one signature through an HsmToken and a Pkcs11Signer on
// the same number of sessions as the daemon (session threads, batched signing, SHA-256 and the ECDSA DER on the
// main thread). No OCSP parsing or building, no limiter, no cache, no metrics: the daemon's ratio to this is the
// cost of its own work.
// usage: node http-sign-server.js '<json BenchKeySpec + {sessions}>'; prints {"port":N}, runs until SIGTERM
import { createServer } from 'node:http';
import { BenchKeySpec, openBenchSigner } from './bench-key';

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2]!) as BenchKeySpec & { sessions: number };
  const { signer, token } = await openBenchSigner(spec, spec.sessions);
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      signer.sign(Buffer.concat(chunks)).then(
        (sig) => res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': sig.length }).end(sig),
        () => res.writeHead(500).end(),
      );
    });
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
  });
  process.once('SIGTERM', () => {
    server.close();
    server.closeAllConnections();
    void token.close();
  });
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e));
  process.exit(1);
});
