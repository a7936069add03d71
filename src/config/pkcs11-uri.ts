// PKCS#11 URIs (RFC 7512) for tokens and keys in the config, read into the fields the rest of the code knows.
// Only what names a token (token=, module-path=) or a private key (object=, id=, type=private) is accepted:
// anything else would be silently ignored by the daemon, so it is refused with the reason.

export class Pkcs11UriError extends Error {
  override name = 'Pkcs11UriError';
}

/** The attributes of a URI, percent-decoded to bytes (RFC 7512 section 2.3: values may be binary, e.g. id). */
export interface Pkcs11Uri {
  path: Map<string, Buffer>;
  query: Map<string, Buffer>;
}

export interface TokenUri {
  tokenLabel?: string;
  modulePath?: string;
}

export interface KeyUri {
  label?: string;
  /** CKA_ID as lowercase hex. */
  id?: string;
  /** The token label the URI names, if any: the caller checks it against the key's token. */
  tokenLabel?: string;
}

const PATH_ATTRIBUTES = new Set([
  'token', 'manufacturer', 'serial', 'model', 'library-manufacturer', 'library-description', 'library-version',
  'object', 'type', 'id', 'slot-description', 'slot-manufacturer', 'slot-id',
]);
const QUERY_ATTRIBUTES = new Set(['pin-source', 'pin-value', 'module-name', 'module-path']);

/**
 * Splits and percent-decodes a `pkcs11:` URI. A PIN in it (`pin-value`) is refused without being echoed:
 * a config file is no place for a secret, and an error message even less.
 */
export function parsePkcs11Uri(text: string): Pkcs11Uri {
  if (!/^pkcs11:/i.test(text)) throw new Pkcs11UriError(`"${text}" is not a PKCS#11 URI (it must start with "pkcs11:")`);
  const rest = text.slice('pkcs11:'.length);
  const q = rest.indexOf('?');
  const pathPart = q < 0 ? rest : rest.slice(0, q);
  const queryPart = q < 0 ? '' : rest.slice(q + 1);
  const uri: Pkcs11Uri = { path: new Map(), query: new Map() };
  const pairs = [
    ...split(pathPart, ';').map((p) => ({ p, inQuery: false })),
    ...split(queryPart, '&').map((p) => ({ p, inQuery: true })),
  ];
  // pin-value first: no other complaint about the URI may quote the part holding a PIN.
  if (pairs.some(({ p }) => p.split('=')[0] === 'pin-value')) {
    throw new Pkcs11UriError('a PIN in a PKCS#11 URI (pin-value) is refused: give it with the token\'s pin.env or pin.file');
  }
  for (const { p, inQuery } of pairs) {
    const eq = p.indexOf('=');
    if (eq <= 0) throw new Pkcs11UriError(`"${p}" in the PKCS#11 URI is not an attribute=value pair`);
    const name = p.slice(0, eq);
    // module-path belongs in the query (RFC 7512 section 2.3); it is accepted in the path too, as some tools write it.
    const query = inQuery || (QUERY_ATTRIBUTES.has(name) && !PATH_ATTRIBUTES.has(name));
    const known = query ? QUERY_ATTRIBUTES.has(name) : PATH_ATTRIBUTES.has(name);
    if (inQuery && PATH_ATTRIBUTES.has(name)) throw new Pkcs11UriError(`PKCS#11 URI attribute "${name}" belongs before the "?"`);
    if (!known && !name.startsWith('x-')) throw new Pkcs11UriError(`unknown PKCS#11 URI attribute "${name}"`);
    const into = query ? uri.query : uri.path;
    if (into.has(name)) throw new Pkcs11UriError(`PKCS#11 URI attribute "${name}" is given twice`);
    into.set(name, percentDecode(p.slice(eq + 1), name));
  }
  return uri;
}

/** A token URI: `pkcs11:token=LABEL?module-path=/usr/lib/softhsm/libsofthsm2.so` (either attribute optional). */
export function tokenFromUri(text: string): TokenUri {
  const uri = parsePkcs11Uri(text);
  refuseOthers(uri, ['token'], ['module-path'], 'a token URI takes token= and module-path=');
  const out: TokenUri = {};
  const token = uri.path.get('token');
  const module = uri.query.get('module-path');
  if (token !== undefined) out.tokenLabel = utf8(token, 'token');
  if (module !== undefined) out.modulePath = utf8(module, 'module-path');
  return out;
}

/** A key URI: `pkcs11:object=LABEL;id=%01%02` (object, id or both; token= and type=private allowed). */
export function keyFromUri(text: string): KeyUri {
  const uri = parsePkcs11Uri(text);
  refuseOthers(uri, ['object', 'id', 'token', 'type'], [], 'a key URI takes object=, id=, token= and type=private');
  const type = uri.path.get('type');
  if (type !== undefined && type.toString('utf8') !== 'private') {
    throw new Pkcs11UriError(`type=${type.toString('utf8')} in a key URI: the signing key is a private key (type=private or no type)`);
  }
  const out: KeyUri = {};
  const object = uri.path.get('object');
  const id = uri.path.get('id');
  const token = uri.path.get('token');
  if (object !== undefined) out.label = utf8(object, 'object');
  if (id !== undefined) {
    if (id.length === 0) throw new Pkcs11UriError('id= in the PKCS#11 URI is empty');
    out.id = id.toString('hex');
  }
  if (token !== undefined) out.tokenLabel = utf8(token, 'token');
  if (out.label === undefined && out.id === undefined) throw new Pkcs11UriError('a key URI needs object=LABEL or id=%XX..., or both');
  return out;
}

function split(part: string, sep: string): string[] {
  return part === '' ? [] : part.split(sep).filter((p, i, all) => p !== '' || i < all.length - 1);
}

function refuseOthers(uri: Pkcs11Uri, path: string[], query: string[], hint: string): void {
  for (const name of uri.path.keys()) {
    if (!path.includes(name)) throw new Pkcs11UriError(`PKCS#11 URI attribute "${name}" is not supported here: ${hint}`);
  }
  for (const name of uri.query.keys()) {
    if (query.includes(name)) continue;
    const why = name === 'pin-source' ? 'set the token\'s pin (env, file or prompt) instead' : hint;
    throw new Pkcs11UriError(`PKCS#11 URI attribute "${name}" is not supported here: ${why}`);
  }
}

// RFC 3986 section 2.1: %XX is one byte; every other character stands for its UTF-8 bytes.
function percentDecode(value: string, name: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < value.length; ) {
    if (value[i] === '%') {
      const hex = value.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) throw new Pkcs11UriError(`"${name}" in the PKCS#11 URI has a bad percent-encoding (use %XX, e.g. %20 for a space)`);
      bytes.push(parseInt(hex, 16));
      i += 3;
    } else {
      const cp = value.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      bytes.push(...Buffer.from(ch, 'utf8'));
      i += ch.length;
    }
  }
  return Buffer.from(bytes);
}

function utf8(value: Buffer, name: string): string {
  const text = value.toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(value)) throw new Pkcs11UriError(`"${name}" in the PKCS#11 URI is not valid UTF-8 text`);
  if (text === '') throw new Pkcs11UriError(`"${name}" in the PKCS#11 URI is empty`);
  return text;
}

/** The URI of a key, for the config's signer.key: `pkcs11:token=…;object=…;id=%01%02` (id byte by byte). */
export function formatKeyUri(key: { tokenLabel?: string; label?: string; id?: string }): string {
  const parts: string[] = [];
  if (key.tokenLabel !== undefined) parts.push(`token=${percentEncode(key.tokenLabel)}`);
  if (key.label !== undefined) parts.push(`object=${percentEncode(key.label)}`);
  if (key.id) parts.push(`id=${key.id.replace(/../g, '%$&')}`);
  return `pkcs11:${parts.join(';')}`;
}

// RFC 7512 section 2.3: unreserved characters (and a few more) stand for themselves; everything else is %XX.
function percentEncode(text: string): string {
  return [...Buffer.from(text, 'utf8')]
    .map((b) => (/[A-Za-z0-9\-._~:[\]@!$'()*+,=]/.test(String.fromCharCode(b)) && b < 0x80 ? String.fromCharCode(b) : `%${b.toString(16).padStart(2, '0')}`))
    .join('');
}
