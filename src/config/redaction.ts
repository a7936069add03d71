// Keeps secrets out of config errors: URL passwords and the values of secret-named keys are masked as `***`.

const MASK = '***';

// `//user:password@`: the password runs to the last `@` before a space, as URL parsers split user info from host.
const URL_PASSWORD = /(\/\/[^\s:/@'"]*:)[^\s]*@/g;
// `?password=`, `&sslpassword=`: node-postgres reads these from the URL's query.
const QUERY_PASSWORD = /([?&][\w-]*password=)[^&\s'"#]*/gi;
// A YAML key whose name says it holds a secret (`pin: 1234` written where `pin: { file: … }` belongs), with its
// value up to the end of the line; a flow mapping or sequence after it is left for its own keys to be masked.
const SECRET_KEY = /((?:^|[\s{,[-])["']?[\w-]*?(?:pin|password|passwd|passphrase|secret|token)["']?\s*:[ \t]+)(?![{[\s])[^\n]*/gi;
// Key names whose values are secrets wherever they appear; `token` is not one: signer.token names a token.
const SECRET_KEY_NAME = /(?:pin|password|passwd|passphrase|secret)$/i;
// Shorter values are too common as parts of other words to be cut out of a message; patterns still mask them.
const MIN_SCRUB_LENGTH = 4;

/** `text` (any message) with URL passwords replaced by `***`. */
export function redactSecrets(text: string): string {
  return text.replace(URL_PASSWORD, `$1${MASK}@`).replace(QUERY_PASSWORD, `$1${MASK}`);
}

/**
 * A line of a YAML file with URL passwords and the values of secret-named keys replaced by `***`. Only for YAML
 * source: in a message, `--token: no token named …` is no secret.
 */
export function redactYamlLine(line: string): string {
  return redactSecrets(line).replace(SECRET_KEY, `$1${MASK}`);
}

/** Every URL password and secret-key value in a config's text or parsed value, longest first, for `scrub`. */
export function secretsIn(source: unknown): string[] {
  const found = new Set<string>();
  const fromText = (s: string) => {
    for (const m of s.matchAll(/\/\/[^\s:/@'"]*:([^\s]*)@/g)) found.add(m[1]!);
    // `:password@` with the URL around it mistyped ("postgres:/ocsp:pw@db", "postgres:/:pw@db"; found by the config
    // fuzz target): masking more than a password in an error message costs nothing.
    for (const m of s.matchAll(/:([^\s:@/'"]+)@/g)) found.add(m[1]!);
    for (const m of s.matchAll(/[?&][\w-]*password=([^&\s'"#]*)/gi)) found.add(m[1]!);
  };
  const walk = (v: unknown, key: string | undefined) => {
    if (typeof v === 'string' || typeof v === 'number') {
      if (key !== undefined && SECRET_KEY_NAME.test(key)) found.add(String(v));
      if (typeof v === 'string') fromText(v);
    } else if (Array.isArray(v)) {
      for (const item of v) walk(item, key);
    } else if (v !== null && typeof v === 'object') {
      for (const [k, item] of Object.entries(v)) {
        fromText(k);
        walk(item, k);
      }
    }
  };
  if (typeof source === 'string') {
    fromText(source);
    for (const m of source.matchAll(/(?:^|[\s{,[-])["']?([\w-]*?)["']?\s*:[ \t]+(?![{[\s])([^\n,}\]#]*)/g)) {
      if (SECRET_KEY_NAME.test(m[1]!)) found.add(m[2]!.trim().replace(/^(["'])(.*)\1$/, '$2'));
    }
  } else {
    walk(source, undefined);
  }
  for (const raw of [...found]) {
    try {
      found.add(decodeURIComponent(raw));
    } catch {
      // A malformed escape: only the raw form can appear.
    }
  }
  // Longest first, so a secret containing another one is replaced whole.
  return [...found].filter((s) => s.length >= MIN_SCRUB_LENGTH).sort((a, b) => b.length - a.length);
}

/** `text` with URL passwords masked and every one of `secrets` replaced by `***`. */
export function scrub(text: string, secrets: string[]): string {
  let out = redactSecrets(text);
  for (const s of secrets) out = out.split(s).join(MASK);
  return out;
}
