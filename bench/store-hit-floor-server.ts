// The least a store-hit responder can do with the daemon's parts, for serve-hits.ts: node:http, the daemon's
// request parser (ocsp/request.ts), GET decoding and caching headers (http/), and one read of the store per request
// (better-sqlite3's prepared statement, as getResponseNow; on PostgreSQL the daemon's batched lookup query, one per
// event-loop turn, as lookup-batcher.ts). It answers what the daemon answers, byte for byte, with the same headers,
// and nothing more: no issuer table (one CA, its SHA-1 hashes compared), no status rules, signer or compliance
// checks, metrics, logging, deadlines, limits or outage handling. Its ratio to the bare server bounds what any
// daemon built on these parts can reach on the machine: the daemon does all of this and more.
// usage: node store-hit-floor-server.js --ca NAME --name-hash HEX --key-hash HEX (--sqlite FILE | --postgres URL)
//        prints {"port":N}, runs until killed
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { Pool } from 'pg';
import { cacheHeaders } from '../src/http/caching';
import { decodeGetPath } from '../src/http/get-path';
import { parseOcspRequest } from '../src/ocsp/request';
import { etagOf, type ServedResponse } from '../src/source/source';
import { responsesByKeys, type ResponseLookup } from '../src/store/postgres/lookups';

const { values } = parseArgs({
  options: { ca: { type: 'string' }, 'name-hash': { type: 'string' }, 'key-hash': { type: 'string' }, sqlite: { type: 'string' }, postgres: { type: 'string' } },
});
const CA = values.ca!;
const NAME_HASH = Buffer.from(values['name-hash']!, 'hex');
const KEY_HASH = Buffer.from(values['key-hash']!, 'hex');
const OCSP_RESPONSE = 'application/ocsp-response';
const LIMITS = { maxCertIds: 1 };
const TRY_LATER = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x03]);
const UNAUTHORIZED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x06]);
const MALFORMED = Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x01]);

interface Stored { der: Buffer; thisUpdateMs: number; nextUpdateMs: number }
type Answer = (serial: string, done: (r: Stored | undefined) => void) => void;

function sqliteReader(file: string): Answer {
  const db = new Database(file, { readonly: true });
  const select = db
    .prepare('SELECT der, this_update, next_update FROM responses WHERE ca = ? AND serial = ? AND hash = ? ORDER BY produced_at DESC LIMIT 1')
    .raw() as unknown as Database.Statement<[string, string, string], [Buffer, number, number]>;
  return (serial, done) => {
    const row = select.get(CA, serial, 'sha1');
    done(row && { der: row[0], thisUpdateMs: row[1], nextUpdateMs: row[2] });
  };
}

/** The lookups of one event-loop turn go out as one query (the daemon's), any number in flight. */
function postgresReader(url: string): Answer {
  const pool = new Pool({ connectionString: url, max: 10 });
  let waiting: { key: ResponseLookup; done: (r: Stored | undefined) => void }[] = [];
  const flush = () => {
    const batch = waiting;
    waiting = [];
    responsesByKeys(pool, batch.map((w) => w.key)).then(
      (rows) => rows.forEach((r, i) => batch[i]!.done(r && { der: r.der, thisUpdateMs: r.thisUpdate.getTime(), nextUpdateMs: r.nextUpdate.getTime() })),
      () => batch.forEach((w) => w.done(undefined)),
    );
  };
  return (serial, done) => {
    if (waiting.push({ key: [CA, serial, 'sha1'], done }) === 1) setImmediate(flush);
  };
}

const read: Answer = values.sqlite ? sqliteReader(values.sqlite) : postgresReader(values.postgres!);

function send(res: ServerResponse, der: Buffer, headers: string[]): void {
  res.writeHead(200, headers);
  res.end(der);
}

function answer(der: Buffer, req: IncomingMessage, res: ServerResponse): void {
  let serial: string;
  try {
    const c = parseOcspRequest(der, LIMITS).certIds[0]!;
    if (c.hash !== 'sha1' || !c.issuerNameHash.equals(NAME_HASH) || !c.issuerKeyHash.equals(KEY_HASH)) {
      return send(res, UNAUTHORIZED, ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(UNAUTHORIZED.length)]);
    }
    serial = c.serial;
  } catch {
    return send(res, MALFORMED, ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(MALFORMED.length)]);
  }
  read(serial, (r) => {
    const now = Date.now();
    if (!r || r.nextUpdateMs <= now) return send(res, TRY_LATER, ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(TRY_LATER.length)]);
    const head = ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(r.der.length)];
    if (req.method === 'POST') return send(res, r.der, head);
    const served: ServedResponse = { der: r.der, thisUpdateMs: r.thisUpdateMs, nextUpdateMs: r.nextUpdateMs, usableUntilMs: r.nextUpdateMs, maxAgeMs: undefined, etag: () => etagOf(r.der) };
    send(res, r.der, [...head, ...cacheHeaders(served, now)]);
  });
}

const server = createServer((req: IncomingMessage, res: ServerResponse) => {
  if (req.method === 'POST') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => answer(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks), req, res));
    return;
  }
  let der: Buffer;
  try {
    der = decodeGetPath(req.url!);
  } catch {
    return send(res, MALFORMED, ['Content-Type', OCSP_RESPONSE, 'Content-Length', String(MALFORMED.length)]);
  }
  answer(der, req, res);
});
process.on('SIGTERM', () => process.exit(0));
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 }) + '\n');
});
