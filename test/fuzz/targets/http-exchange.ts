// HTTP exchanges for the OCSP edge target: method, path, headers and body, as JSON corpus files, made from the
// request corpus in the forms clients send and mutated; sent over one keep-alive connection to 127.0.0.1.
import { Agent, request, validateHeaderName, validateHeaderValue } from 'node:http';
import fc from 'fast-check';
import { corpusOf } from '../fuzz-target';
import { derOrByteEdit } from '../der-edit';
import { byteEdit, mutated, textEdit } from '../mutate';
import { GET_FORMS } from './get-path';

export interface Exchange {
  method: string;
  path: string;
  /** [name, value] pairs in order; a name may repeat. */
  headers: [string, string][];
  /** base64 */
  body: string;
}

export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

// The client frames the request itself: these would make the exchange something other than one HTTP request.
const FRAMING = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'expect', 'upgrade', 'te', 'trailer', 'keep-alive']);

/** Node's HTTP parser answers a request line and headers past 16 KiB with 431 before any handler sees them. */
const MAX_HEAD = 15 * 1024;

/** Whether node's client sends this as one well-framed request the handler sees (else it tests nothing here). */
export function sendable(x: Exchange): boolean {
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(x.method) || ['CONNECT'].includes(x.method.toUpperCase())) return false;
  if (!/^\/[\x21-\xff]*$/.test(x.path)) return false;
  if (x.path.length + x.headers.reduce((n, [k, v]) => n + k.length + v.length + 4, 0) > MAX_HEAD) return false;
  try {
    for (const [n, v] of x.headers) {
      if (FRAMING.has(n.toLowerCase())) return false;
      validateHeaderName(n);
      validateHeaderValue(n, v);
    }
  } catch {
    return false;
  }
  return true;
}

export function send(agent: Agent, port: number, x: Exchange): Promise<Answer> {
  const body = Buffer.from(x.body, 'base64');
  // Headers as a list (a name may repeat): node then adds none of its own, Host included.
  const headers = ['Host', `127.0.0.1:${port}`, ...x.headers.flat(), ...(body.length > 0 || x.method.toUpperCase() === 'POST' ? ['Content-Length', String(body.length)] : [])];
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method: x.method, path: x.path, headers, agent, timeout: 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.on('error', reject);
    req.end(body);
  });
}

const CONTENT_TYPES = [
  'application/ocsp-request', 'Application/OCSP-Request', 'application/ocsp-request; charset=binary', 'application/ocsp-request ;x',
  'application/ocsp-requests', 'application/ocsp-response', 'text/plain', '', ' application/ocsp-request',
];
const OTHER_HEADERS: fc.Arbitrary<[string, string]> = fc.oneof(
  fc.tuple(fc.constant('X-Forwarded-For'), fc.constantFrom('203.0.113.7', '203.0.113.7, 127.0.0.1', 'unknown', '::1', '', '999.1.1.1')),
  fc.tuple(fc.constant('If-None-Match'), fc.constantFrom('*', '"abc"', 'W/"x"', '')),
  fc.tuple(fc.constant('If-Modified-Since'), fc.constantFrom('Thu, 01 Jan 1970 00:00:00 GMT', 'Fri, 01 Jan 2100 00:00:00 GMT', 'yesterday', '')),
  fc.tuple(fc.constantFrom('Accept', 'Cache-Control', 'Content-Type', 'X-Other'), fc.string({ maxLength: 40 })),
);
const METHODS = fc.oneof(
  { arbitrary: fc.constantFrom('POST', 'GET'), weight: 8 },
  { arbitrary: fc.constantFrom('HEAD', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'get', 'post', 'PROPFIND'), weight: 2 },
);
const PREFIXES = ['/', '/ocsp/', '/ocsp', '//', '/ocsp//', '/other/', '/ocspx/'];
const QUERIES = ['', '', '', '?', '?a=b', '?x=%zz'];
const POST_PATHS = ['/', '/ocsp', '/ocsp/', '/?a=b', '/ocsp?x', '/other', '//', '/healthz', '/metrics', '/ocsp/x'];

/** Fresh exchanges built around mutated requests. */
function freshExchanges(requests: Buffer[]): fc.Arbitrary<Exchange> {
  const der = mutated(requests, derOrByteEdit);
  const getPath = fc
    .tuple(fc.constantFrom(...PREFIXES), fc.constantFrom(...Object.keys(GET_FORMS)), der, fc.constantFrom(...QUERIES))
    .map(([prefix, form, d, q]) => prefix + GET_FORMS[form]!(d).replace(/ /g, '%20') + q);
  const contentType = fc.option(fc.constantFrom(...CONTENT_TYPES), { freq: 8, nil: undefined });
  return fc
    .record({
      method: METHODS,
      getPath: fc.oneof({ arbitrary: getPath, weight: 9 }, { arbitrary: fc.constantFrom('/healthz', '/readyz', '/metrics', '/', '/ocsp'), weight: 1 }),
      postPath: fc.oneof({ arbitrary: fc.constant('/'), weight: 4 }, { arbitrary: fc.constantFrom(...POST_PATHS), weight: 1 }),
      contentType,
      extra: fc.array(OTHER_HEADERS, { maxLength: 3 }),
      body: fc.oneof({ arbitrary: der, weight: 9 }, { arbitrary: fc.constantFrom(Buffer.alloc(0), Buffer.alloc(65_537, 0x30)), weight: 1 }),
    })
    .map((r) => {
      const post = r.method.toUpperCase() === 'POST';
      const headers: [string, string][] = [...(r.contentType !== undefined ? [['Content-Type', r.contentType] as [string, string]] : []), ...r.extra];
      return { method: r.method, path: post ? r.postPath : r.getPath, headers: post ? headers : r.extra, body: post ? r.body.toString('base64') : '' };
    });
}

/** Corpus exchanges with one part edited: the path as text, the body as DER or bytes, a header added or dropped. */
function editedExchanges(corpus: Exchange[]): fc.Arbitrary<Exchange> {
  const pathEdit = textEdit(['%', '%2F', '%3D', '?', '/', '//', 'ocsp', '=', '+', '%20']);
  const bodies = corpus.map((x) => Buffer.from(x.body, 'base64'));
  type Edit = (x: Exchange) => Exchange;
  const edit: fc.Arbitrary<Edit> = fc.oneof(
    pathEdit.map((e): Edit => (x) => ({ ...x, path: e(x.path, corpus.map((c) => c.path)) })),
    fc.oneof(derOrByteEdit, byteEdit).map((e): Edit => (x) => ({ ...x, body: e(Buffer.from(x.body, 'base64'), bodies).toString('base64') })),
    OTHER_HEADERS.map((h): Edit => (x) => ({ ...x, headers: [...x.headers, h] })),
    fc.nat().map((i): Edit => (x) => ({ ...x, headers: x.headers.filter((_, j) => j !== i % Math.max(1, x.headers.length)) })),
    METHODS.map((m): Edit => (x) => ({ ...x, method: m })),
  );
  return mutated(corpus, edit.map((e) => (x: Exchange) => e(x)), 4);
}

export function exchanges(corpus: Buffer[]): fc.Arbitrary<Buffer> {
  const requests = corpusOf('ocsp-request').map((c) => c.bytes);
  const parsed = corpus.map((c) => JSON.parse(c.toString('utf8')) as Exchange);
  return fc
    .oneof({ arbitrary: freshExchanges(requests), weight: 3 }, { arbitrary: editedExchanges(parsed), weight: 1 })
    .map((x) => Buffer.from(JSON.stringify(x)));
}
