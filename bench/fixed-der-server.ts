// The reference for serving from memory: the least a Node HTTP responder can do per request. Bare node:http
// answering every GET and POST with one fixed DER OCSP response (read from a file at start): the POST body is
// read to its end (as any server must) but nothing is parsed, looked up or checked. It shares the 2 cores with
// wrk exactly as the daemon does, so daemon / this = what the daemon's own work costs on a cache or store hit.
// usage: node fixed-der-server.js RESPONSE.der; prints {"port":N}, runs until killed
import { readFileSync } from 'node:fs';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';

const der = readFileSync(process.argv[2]!);
const headers = { 'Content-Type': 'application/ocsp-response', 'Content-Length': der.length };
const answer = (res: ServerResponse) => res.writeHead(200, headers).end(der);

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.method === 'POST') {
    req.on('data', () => undefined);
    req.on('end', () => answer(res));
  } else answer(res);
});
// A clean exit, so that --cpu-prof writes its profile.
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
