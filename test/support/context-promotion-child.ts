// Run by test/request-context.test.ts under --trace-gc-nvp: many short-lived stand-in requests, each with a
// context made as argv[2] says ("literal": an object literal with a getter; "class": LiveRequestContext) and read
// once. What the scavenges promote is in V8's lines on stdout.
import type { IncomingMessage } from 'node:http';
import { trustedProxyList } from '../../src/http/client-address';
import { LiveRequestContext } from '../../src/http/request-context';
import type { RequestContext } from '../../src/source/source';

const kind = process.argv[2];
const requests = Number(process.argv[3]);
const trusted = trustedProxyList([]);
const make: (req: IncomingMessage, deadlineMs: number) => RequestContext =
  kind === 'literal'
    ? (req, deadlineMs) => ({
        lane: 'live',
        get client() {
          return req.socket.remoteAddress;
        },
        deadlineMs,
      })
    : (req, deadlineMs) => new LiveRequestContext(req, trusted, deadlineMs);

let seen = 0;
for (let i = 0; i < requests; i++) {
  // A stand-in for a request: headers, socket and some bytes of its own that die with it.
  const req = { headers: {}, socket: { remoteAddress: '127.0.0.1' }, body: new Array(32).fill(i) } as unknown as IncomingMessage;
  if (make(req, i).client === '127.0.0.1') seen++;
}
process.stdout.write(`seen=${seen}\n`);
