// What the parts of a store hit cost alone, outside any server (README "Benchmarks", "The floor"): parsing the
// request, decoding a GET path, one SQLite read as getResponseNow does it (a 10,000-row in-memory table of the
// store's key and columns), the caching headers with the ETag. Each over the same 10,000 requests the serve-hits
// bench rotates through, 20 passes, the third of three timings kept (the first two warm the JIT).
// usage: npm run bench -- store-hit-parts
import { randomBytes } from 'node:crypto';
import Database from 'better-sqlite3';
import { cacheHeaders } from '../src/http/caching';
import { decodeGetPath } from '../src/http/get-path';
import { encodeCertId } from '../src/ocsp/cert-id';
import { parseOcspRequest } from '../src/ocsp/request';
import { TAG, tlv } from '../src/ocsp/tlv';
import { etagOf } from '../src/source/source';
import { machine } from './machine';

const N = 10_000;
const PASSES = 20;
const nameHash = randomBytes(20);
const keyHash = randomBytes(20);
const serials = Array.from({ length: N }, (_, i) => (0x1000000 + i).toString(16));
const ders = serials.map((s) => tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, tlv(TAG.sequence, encodeCertId('sha1', nameHash, keyHash, s))))));
const paths = ders.map((d) => '/' + encodeURIComponent(d.toString('base64')));
const der = randomBytes(560); // about the size of the bench's EC P-256 responses

const db = new Database(':memory:');
db.exec('CREATE TABLE responses (ca TEXT, serial TEXT, hash TEXT, produced_at INTEGER, this_update INTEGER, next_update INTEGER, der BLOB, PRIMARY KEY (ca, serial, hash, produced_at)) WITHOUT ROWID');
const insert = db.prepare('INSERT INTO responses VALUES (?, ?, ?, ?, ?, ?, ?)');
const now = Date.now();
db.transaction(() => serials.forEach((s) => insert.run('bench', s, 'sha1', now, now, now + 86_400_000, der)))();
const select = db.prepare('SELECT der, this_update, next_update FROM responses WHERE ca = ? AND serial = ? AND hash = ? ORDER BY produced_at DESC LIMIT 1').raw();

/** µs per call of fn(i) over the N inputs, PASSES passes; the third of three timings. */
function time(fn: (i: number) => unknown): number {
  let us = 0;
  for (let k = 0; k < 3; k++) {
    const t0 = process.hrtime.bigint();
    for (let p = 0; p < PASSES; p++) for (let i = 0; i < N; i++) fn(i);
    us = Number(process.hrtime.bigint() - t0) / (PASSES * N) / 1000;
  }
  return Math.round(us * 100) / 100;
}

let sink = 0;
const results = {
  parseOcspRequest: time((i) => (sink += parseOcspRequest(ders[i]!, { maxCertIds: 1 }).certIds.length)),
  decodeGetPath: time((i) => (sink += decodeGetPath(paths[i]!).length)),
  sqliteRead: time((i) => (sink += (select.get('bench', serials[i]!, 'sha1') as unknown[]).length)),
  cacheHeadersWithEtag: time(() => (sink += cacheHeaders({ der, thisUpdateMs: now, nextUpdateMs: now + 86_400_000, usableUntilMs: now + 86_400_000, maxAgeMs: undefined, etag: () => etagOf(der) }, Date.now()).length)),
};
if (sink === 0) throw new Error('nothing was computed');
console.log(JSON.stringify({ benchmark: 'store-hit-parts', unit: 'µs per call', machine: machine(), results }, null, 2));
