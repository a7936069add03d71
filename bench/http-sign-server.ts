// A second reference for live signing: the least a Node HTTP responder can do per request. Bare node:http,
// read the body, digest it, one pkcs11js async signature on a free session, send the raw signature back. No
// OCSP parsing or building, no limiter, no metrics. It shares the 2 cores with wrk and SoftHSM2 exactly as the
// daemon does, so raw loop -> this -> daemon separates the machine's ceiling from the daemon's own cost.
// usage: node http-sign-server.js '<json as raw-sign-loop, without durationMs>'; prints {"port":N}, runs until killed
import { createServer } from 'node:http';
import { BenchKeySpec, openBenchKey } from './bench-key';

const { p11, sessions: free, key, mechanism, input: toInput } = openBenchKey(JSON.parse(process.argv[2]!) as BenchKeySpec);
const waiting: ((session: Buffer) => void)[] = [];

async function sign(data: Buffer): Promise<Buffer> {
  const input = toInput(data);
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
