// The config file's schema: every option, its default and its validation (documented in README "Configuration").
import { availableParallelism } from 'node:os';
import { isIP } from 'node:net';
import { z } from 'zod';
import { cabfProblems } from './cabf-profile';
import { keyFromUri, tokenFromUri, TokenUri } from './pkcs11-uri';
import { parseDuration, parseSize } from './units';

function unit<T>(parse: (s: string) => T) {
  return z.string().transform((s, ctx) => {
    try {
      return parse(s);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
      return z.NEVER;
    }
  });
}
const duration = unit(parseDuration).pipe(z.number().positive('must be greater than 0'));
const size = z.union([z.number().int().positive(), unit(parseSize)]);
function isAddressOrCidr(s: string): boolean {
  const [addr, bits, extra] = s.split('/');
  const family = isIP(addr ?? '');
  if (family === 0 || extra !== undefined) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
}

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'use letters, digits, ".", "_" or "-" (max 64)');

// Exactly-one-of objects: refined by hand so the error says what to write, then narrowed to a union type.
const pinSource = z
  .object({ env: z.string().min(1).optional(), file: z.string().min(1).optional(), prompt: z.literal(true).optional() })
  .strict()
  .refine((p) => [p.env, p.file, p.prompt].filter((v) => v !== undefined).length === 1, {
    message: 'set exactly one of env: VAR, file: PATH or prompt: true',
  })
  .transform((p): { env: string } | { file: string } | { prompt: true } =>
    p.env !== undefined ? { env: p.env } : p.file !== undefined ? { file: p.file } : { prompt: true },
  );

/** A key is named by label, id or (from a URI) both: then both must match. */
type KeyRefShape = { label: string; id?: string } | { id: string };

const keyFields = z
  .object({ label: z.string().min(1).optional(), id: z.string().regex(/^([0-9a-fA-F]{2})+$/, 'hex bytes, e.g. "0a1b"').optional() })
  .strict()
  .refine((k) => (k.label === undefined) !== (k.id === undefined), { message: 'set exactly one of label: NAME or id: HEX' })
  .transform((k): KeyRefShape => (k.label !== undefined ? { label: k.label } : { id: k.id! }));

/** The token label a key URI named (token=), checked against the signer's token once all tokens are known. */
const keyUriTokens = new WeakMap<object, string>();

/** RFC 7512 form: object= and id= may both be given, and then both must match. */
const keyUri = z.string().transform((s, ctx): KeyRefShape => {
  try {
    const { label, id, tokenLabel } = keyFromUri(s);
    const ref = label !== undefined ? { label, ...(id !== undefined ? { id } : {}) } : { id: id! };
    if (tokenLabel !== undefined) keyUriTokens.set(ref, tokenLabel);
    return ref;
  } catch (e) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: (e as Error).message });
    return z.NEVER;
  }
});

// Dispatched by hand: a zod union would report "Invalid input" for an object form that fails its refinement.
const keyRef = z
  .union([z.string(), z.record(z.unknown())], {
    errorMap: (_, ctx) => ({
      message: ctx.data === undefined ? 'Required' : 'a PKCS#11 URI ("pkcs11:object=NAME"), { label: NAME } or { id: HEX }',
    }),
  })
  .transform((v, ctx): KeyRefShape => {
    const r = typeof v === 'string' ? keyUri.safeParse(v) : keyFields.safeParse(v);
    if (r.success) return r.data;
    for (const issue of r.error.issues) ctx.addIssue({ code: z.ZodIssueCode.custom, path: issue.path, message: issue.message });
    return z.NEVER;
  });

/** Two sessions per core: measured on SoftHSM2, more sessions than that only add contention. */
export const DEFAULT_SESSIONS = Math.max(2, 2 * availableParallelism());

/** One serving process per core: each answers on its own core, the primary keeps the HSM (README "Architecture"). */
export const DEFAULT_WORKERS = availableParallelism();

const limits = z
  .object({
    /** Signatures per second; 0 = no rate ceiling. */
    rate: z.number().min(0).default(0),
    /** Signatures allowed at once above the rate (token bucket size); default: one second's worth. */
    burst: z.number().int().min(1).optional(),
    maxConcurrent: z.number().int().min(1).max(1024).optional(),
    maxQueue: z.number().int().min(0).max(100_000).default(256),
    queueTimeout: duration.default('250ms'),
    clientShare: z.number().gt(0).max(1).default(0.5),
  })
  .strict();

const token = z
  .object({
    name,
    /** RFC 7512 URI naming the token and its module: instead of tokenLabel and module (or beside one of them). */
    uri: z.string().min(1).optional(),
    module: z.string().min(1).optional(),
    tokenLabel: z.string().min(1).max(32).optional(),
    pin: pinSource,
    sessions: z.number().int().min(1).max(256).default(DEFAULT_SESSIONS),
    /** Keep retrying activation this long instead of failing at once (HSMs that come up after the daemon). */
    waitForToken: duration.optional(),
    signTimeout: duration.default('2s'),
    /** Deadline of every other PKCS#11 call (session open, login, key lookup, health probe). */
    callTimeout: duration.default('5s'),
    healthCheckInterval: duration.default('5s'),
    recovery: z
      .object({ initialBackoff: duration.default('100ms'), maxBackoff: duration.default('30s') })
      .strict()
      .default({}),
    limits: limits.default({}),
  })
  .strict()
  .transform(({ uri, ...t }, ctx) => {
    let fromUri: TokenUri = {};
    try {
      if (uri !== undefined) fromUri = tokenFromUri(uri);
    } catch (e) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['uri'], message: (e as Error).message });
      return z.NEVER;
    }
    const module = fromFieldOrUri(t.module, fromUri.modulePath, 'module', 'module-path', ctx);
    const tokenLabel = fromFieldOrUri(t.tokenLabel, fromUri.tokenLabel, 'tokenLabel', 'token', ctx);
    if (tokenLabel !== undefined && tokenLabel.length > 32) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['uri'], message: 'token= is longer than a token label can be (32 characters)' });
    }
    if (module === undefined || tokenLabel === undefined) return z.NEVER;
    return { ...t, module, tokenLabel };
  });

/** A token setting given once: as its own field or in tokens[].uri, never both (which one would win is a guess). */
function fromFieldOrUri(field: string | undefined, inUri: string | undefined, name: string, attr: string, ctx: z.RefinementCtx): string | undefined {
  if (field !== undefined && inUri !== undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: [name], message: `given twice: here and as ${attr}= in uri; keep one` });
    return undefined;
  }
  if (field === undefined && inUri === undefined) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: [name], message: `Required (or ${attr}= in uri)` });
  }
  return field ?? inUri;
}

/** Zero allowed: a validity of 0 means responses carry no nextUpdate (newer information is always available). */
const validity = z.union([z.literal(0), unit(parseDuration).pipe(z.number().min(0))]);

const HASHES = ['sha1', 'sha256', 'sha384', 'sha512'] as const;
const NONCE_POLICIES = ['ignore', 'whenIdle'] as const;

/** Pre-produced responses (RFC 6960 section 2.5), per CA; unset fields come from defaults.preProduction. */
const preProduction = z
  .object({
    enabled: z.boolean().optional(),
    /** Persist a response made for a single-certificate request, for later requests. */
    storeOnDemand: z.boolean().optional(),
    onIssuance: z.boolean().optional(),
    onRevocation: z.boolean().optional(),
    /** CertID hashes to pre-produce for: one response per certificate and hash. */
    hashes: z.array(z.enum(HASHES)).min(1).optional(),
    /** When the CA certificate expires within this, produce final responses (nextUpdate 9999-12-31). */
    finalResponsesBefore: duration.optional(),
    /** Requests with a nonce: `ignore` (EJBCA) or `whenIdle` (signed live, nonce echoed, when a permit is free at once). */
    nonce: z.enum(NONCE_POLICIES).optional(),
  })
  .strict();

const signer = z
  .object({
    token: name,
    key: keyRef,
    /** Delegated responder certificate; omitted when the CA signs with its own key. */
    certificate: z.string().min(1).optional(),
    /** Optional ceiling for this key alone, on top of the token's. */
    limits: z
      .object({ rate: z.number().min(0).default(0), burst: z.number().int().min(1).optional(), maxConcurrent: z.number().int().min(1).optional() })
      .strict()
      .optional(),
  })
  .strict();

/** Rules the settings must follow: `cabf` refuses what the CA/Browser Forum Baseline Requirements forbid (cabf-profile.ts). */
const compliance = z.enum(['none', 'cabf']);

/** Serials the store has never heard of: unknown, revoked (RFC 6960 section 2.2) or good (CAs known from CRLs only). */
const nonIssued = z.enum(['unknown', 'revoked', 'good']);

/** Where and how often the CRL download service fetches the CA's CRLs (EJBCA's CRLDownloadService). */
const crlDownload = z
  .object({
    /** Full CRL URLs, tried in order until one CRL is applied. */
    urls: z
      .array(z.string().regex(/^https?:\/\/[^\s/]+/i, 'an http:// or https:// URL, e.g. http://crl.example.com/ca.crl'))
      .min(1, 'give at least one URL of the CA\'s CRL'),
    /** A body larger than this is refused; the download is cut off at the limit. */
    maxSize: size.default('10MiB'),
    /** How often the daemon checks whether a CRL is due. */
    interval: duration.default('10m'),
    /** Download every time, not only once the last CRL's nextUpdate has passed. */
    ignoreNextUpdate: z.boolean().default(false),
    /** Bound on one download (connect to last byte). */
    timeout: duration.default('30s'),
  })
  .strict();

/** The CA's OpenSSL index.txt, imported whenever it changes (README "Following index.txt"); a path alone is { file: PATH }. */
const indexFollow = z.preprocess(
  (v) => (typeof v === 'string' ? { file: v } : v),
  z
    .object(
      {
        file: z.string().min(1),
        /** How often the file is checked for a change (inode, size, modification time). */
        interval: duration.default('10s'),
      },
      { invalid_type_error: 'a path to index.txt, or { file: PATH, interval: 10s }' },
    )
    .strict(),
);

const ca = z
  .object({
    name,
    certificate: z.string().min(1),
    signer,
    /**
     * The same CA (same subject) under earlier keys, after CA key renewal: each its own binding, answered from the
     * same certificate records. Pre-production applies to the current key only.
     */
    previousKeys: z.array(z.object({ certificate: z.string().min(1), signer }).strict()).default([]),
    validity: validity.optional(),
    responderId: z.enum(['byKey', 'byName']).optional(),
    preProduction: preProduction.optional(),
    crl: crlDownload.optional(),
    index: indexFollow.optional(),
    includeSignerCert: z.boolean().optional(),
    includeCertChain: z.boolean().optional(),
    nonIssued: nonIssued.optional(),
    archiveCutoff: duration.optional(),
    maxAge: duration.optional(),
    compliance: compliance.optional(),
  })
  .strict();

/**
 * Publishing API authentication: a bearer token read from a file at startup, or mutual TLS (clients must present a
 * certificate issued by `ca`; `cert` and `key` are the listener's own). Refined by hand like pinSource.
 */
const publishingAuth = z
  .object({
    tokenFile: z.string().min(1).optional(),
    mtls: z.object({ ca: z.string().min(1), cert: z.string().min(1), key: z.string().min(1) }).strict().optional(),
  })
  .strict()
  .refine((a) => (a.tokenFile === undefined) !== (a.mtls === undefined), {
    message: 'set exactly one of tokenFile: PATH or mtls: { ca: PATH, cert: PATH, key: PATH }',
  })
  .transform((a): { tokenFile: string } | { mtls: { ca: string; cert: string; key: string } } =>
    a.tokenFile !== undefined ? { tokenFile: a.tokenFile } : { mtls: a.mtls! },
  );

/** The listener CAs publish issuance and revocation events to (README "Publishing API"); separate from OCSP's. */
const publishing = z
  .object({
    host: z.string().min(1).default('127.0.0.1'),
    port: z.number().int().min(0).max(65535),
    bodyLimit: size.default('64KiB'),
    auth: publishingAuth,
  })
  .strict();

/** Every N days (1-31), hours (1-23) or minutes (1-59), as in EJBCA's cleanup settings. */
const cleanupInterval = z.string().transform((s, ctx) => {
  const m = /^\s*(\d+)\s*(d|h|m)\s*$/.exec(s);
  const max = m ? { d: 31, h: 23, m: 59 }[m[2] as 'd' | 'h' | 'm'] : 0;
  if (!m || Number(m[1]) < 1 || Number(m[1]) > max) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${s}" is not a cleanup interval: use 1d-31d, 1h-23h or 1m-59m` });
    return z.NEVER;
  }
  return parseDuration(`${m[1]}${m[2]}`);
});

export const configSchema = z
  .object({
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
        pathPrefix: z
          .string()
          .regex(/^(\/[A-Za-z0-9._~-]+)+$/, 'a path like /ocsp (no trailing slash)')
          .optional(),
        bodyLimit: size.default('64KiB'),
        maxCertIdsPerRequest: z.number().int().min(1).max(1000).default(20),
        requestTimeout: duration.default('10s'),
        /** A request whose headers are not all in by then is dropped; unset: requestTimeout (never longer: node's rule). */
        headersTimeout: duration.optional(),
        /** Open connections per serving process; past it the one idle longest is closed, or else the new one. */
        maxConnections: z.number().int('a whole number of connections').min(1, 'at least 1').max(1_000_000, 'at most 1000000').default(4096),
        /** Open connections per TCP peer address and serving process; 0: no bound (trustedProxies are never bound). */
        maxConnectionsPerClient: z.number().int('a whole number of connections').min(0, '0 (no bound) or more').max(1_000_000, 'at most 1000000').default(256),
        /** Proxies whose X-Forwarded-For is believed, as addresses or CIDR blocks. */
        trustedProxies: z.array(z.string().refine(isAddressOrCidr, 'an IP address or CIDR block, e.g. 10.0.0.0/8')).default([]),
        responseTimeout: duration.default('5s'),
        /** SIGTERM: requests in flight get this long to finish before their connections are closed. */
        shutdownTimeout: duration.default('10s'),
        /** Processes serving the OCSP port; 1: the daemon is one process, as before workers existed. */
        workers: z
          .number({ invalid_type_error: 'a whole number of processes, e.g. 2' })
          .int('a whole number of processes, e.g. 2')
          .min(1, 'at least 1 (1: one process serves everything)')
          .max(256, 'at most 256')
          .default(DEFAULT_WORKERS),
      })
      .strict()
      .superRefine(serverBounds)
      .default({}),
    dataDir: z.string().min(1).default('data'),
    /** type defaults to postgres when url is given, else sqlite. */
    store: z.preprocess(
      (s = {}) => (s !== null && typeof s === 'object' && !('type' in s) ? { type: 'url' in s ? 'postgres' : 'sqlite', ...s } : s),
      z.discriminatedUnion('type', [
        z
          .object({
            type: z.literal('sqlite'),
            path: z.string().min(1).default('ocsp-hsm.sqlite'),
            /** A status write waits this long for another writer (a pre-signer batch, an import) before failing. */
            writeTimeout: duration.default('30s'),
          })
          .strict(),
        z
          .object({
            type: z.literal('postgres'),
            url: z.string().regex(/^postgres(ql)?:\/\//, 'a postgres:// or postgresql:// URL, e.g. postgres://user:password@host:5432/db'),
            poolSize: z.number().int().min(1).max(1000).default(10),
            writeTimeout: duration.default('30s'),
            /**
             * Answers from memory stop when the change feed has not been proved current for this long: a revocation
             * acknowledged at T is never contradicted after T + maxStaleness, by any responder on the database.
             */
            maxStaleness: duration.default('2s'),
          })
          .strict(),
      ]),
    ),
    defaults: z
      .object({
        validity: validity.default('1d'),
        responderId: z.enum(['byKey', 'byName']).default('byKey'),
        includeSignerCert: z.boolean().default(true),
        includeCertChain: z.boolean().default(true),
        nonIssued: nonIssued.default('unknown'),
        compliance: compliance.default('none'),
        archiveCutoff: duration.optional(),
        /** HTTP caches may keep a GET answer this long (never past its nextUpdate); unset: until nextUpdate. */
        maxAge: duration.optional(),
        preProduction: z
          .object({
            enabled: z.boolean().default(false),
            storeOnDemand: z.boolean().default(true),
            onIssuance: z.boolean().default(false),
            onRevocation: z.boolean().default(true),
            hashes: z.array(z.enum(HASHES)).min(1).default(['sha1', 'sha256']),
            finalResponsesBefore: duration.optional(),
            nonce: z.enum(NONCE_POLICIES).default('ignore'),
          })
          .strict()
          .default({}),
      })
      .strict()
      .default({}),
    /** Hot pre-produced responses in memory; maxSize 0 turns the cache off. */
    cache: z
      .object({ maxEntries: z.number().int().min(1).optional(), maxSize: z.union([z.literal(0), size]).default('100MiB') })
      .strict()
      .default({}),
    preSigner: z
      .object({
        /** How often the daemon runs the pre-signer; unset: only "ocsp-hsm presign" runs it. */
        interval: duration.optional(),
        /** Refresh a stored response once this fraction of its validity has passed. */
        refreshAfter: z.number().gt(0).max(1).default(0.5),
        /** Signatures in flight at once (the signing limiter's presign lane still decides). */
        concurrency: z.number().int().min(1).max(1024).default(16),
        batchSize: z.number().int().min(1).max(10_000).default(500),
      })
      .strict()
      .default({}),
    cleanup: z.object({ every: cleanupInterval.optional() }).strict().default({}),
    /**
     * Several responders on one store (README "Running a cluster"): the scheduled work and production upon change run
     * on the one holding the lease; every responder records a heartbeat with the change it has applied.
     */
    cluster: z
      .object({
        /** Shown in `ocsp-hsm cluster status` and the heartbeat row instead of the host name. */
        name: name.optional(),
        /** How long a lease holder that stopped renewing keeps the work; renewed every third of it. */
        lease: duration.default('10s'),
        /** How often a responder records its heartbeat (and the change it has applied). */
        heartbeat: duration.default('1s'),
        /** The publishing API's default for `?wait`: `all` waits until every live responder applied a change. */
        wait: z.enum(['none', 'all']).default('none'),
        /** The longest a publishing request waits for the responders (then answers, naming those that had not applied). */
        waitTimeout: duration.default('5s'),
      })
      .strict()
      .default({}),
    /** A listener of its own for /metrics (and /healthz, /readyz); unset: /metrics on the OCSP listener. */
    metrics: z
      .object({ host: z.string().min(1).default('127.0.0.1'), port: z.number().int().min(0).max(65535) })
      .strict()
      .optional(),
    publishing: publishing.optional(),
    log: z
      .object({
        level: z.enum(['debug', 'info', 'warn', 'error']).default('info'),
        /** Share of OCSP requests logged, one JSON line each (0: none, 1: every one). */
        requestSampleRate: z.number().min(0).max(1).default(0),
      })
      .strict()
      .default({}),
    /** Signer and CA certificates expiring within expiryWarning get a warning at startup, reload and config check. */
    certificates: z.object({ expiryWarning: duration.default('30d') }).strict().default({}),
    /** Further CA certificates (roots, intermediates not answered for) to build signer chains from. */
    chainCertificates: z.array(z.string().min(1)).default([]),
    /** Per certificate profile (the profile recorded with a certificate): wins over the CA's and the defaults. */
    profiles: z.record(z.string().min(1), z.object({ validity: validity.optional(), maxAge: duration.optional() }).strict()).default({}),
    tokens: z.array(token).min(1),
    cas: z.array(ca).min(1),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    unique(cfg.tokens.map((t) => t.name), ['tokens'], ctx);
    unique(cfg.cas.map((c) => c.name), ['cas'], ctx);
    const tokenNames = new Set(cfg.tokens.map((t) => t.name));
    const tokenLabels = new Map(cfg.tokens.map((t) => [t.name, t.tokenLabel]));
    if (cfg.publishing && cfg.publishing.port !== 0 && cfg.publishing.port === cfg.server.port) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        path: ['publishing', 'port'],
        message: `must differ from server.port (${cfg.server.port}): the publishing API has a listener of its own`,
      });
    }
    cfg.cas.forEach((c, i) => {
      const enabled = c.preProduction?.enabled ?? cfg.defaults.preProduction.enabled;
      if (enabled && (c.validity ?? cfg.defaults.validity) === 0) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['cas', i, c.validity === undefined ? 'preProduction' : 'validity'],
          message: 'pre-production needs a response validity greater than 0 (set validity, e.g. 1d)',
        });
      }
      const signers = [{ s: c.signer, path: ['cas', i, 'signer'] }, ...c.previousKeys.map((k, j) => ({ s: k.signer, path: ['cas', i, 'previousKeys', j, 'signer'] }))];
      for (const { s, path } of signers) {
        if (!tokenNames.has(s.token)) {
          ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, 'token'], message: `no token named "${s.token}" under tokens` });
        }
        const uriToken = keyUriTokens.get(s.key);
        if (uriToken !== undefined && tokenNames.has(s.token) && uriToken !== tokenLabels.get(s.token)) {
          ctx.addIssue({
            code: z.ZodIssueCode.custom,
            path: [...path, 'key'],
            message: `the URI names token "${uriToken}" but signer.token "${s.token}" has tokenLabel "${tokenLabels.get(s.token)}"`,
          });
        }
      }
    });
    for (const p of cabfProblems(cfg)) ctx.addIssue({ code: z.ZodIssueCode.custom, path: p.path, message: p.message });
  });

/** Bounds that name each other: node refuses a header timeout above the request timeout. */
function serverBounds(s: { requestTimeout: number; headersTimeout?: number | undefined; maxConnections: number; maxConnectionsPerClient: number }, ctx: z.RefinementCtx): void {
  if (s.headersTimeout !== undefined && s.headersTimeout > s.requestTimeout) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['headersTimeout'], message: `must not exceed server.requestTimeout (${s.requestTimeout} ms)` });
  }
  if (s.maxConnectionsPerClient > s.maxConnections) {
    ctx.addIssue({ code: z.ZodIssueCode.custom, path: ['maxConnectionsPerClient'], message: `must not exceed server.maxConnections (${s.maxConnections})` });
  }
}

function unique(names: string[], path: (string | number)[], ctx: z.RefinementCtx): void {
  names.forEach((n, i) => {
    if (names.indexOf(n) !== i) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, path: [...path, i, 'name'], message: `duplicate name "${n}"` });
    }
  });
}

export type Config = z.infer<typeof configSchema>;
export type TokenConfig = Config['tokens'][number];
export type CaConfig = Config['cas'][number];
export type PinSource = TokenConfig['pin'];
export type KeyRef = CaConfig['signer']['key'];
export type LimitsConfig = TokenConfig['limits'];
export type PublishingConfig = NonNullable<Config['publishing']>;
export type CrlDownloadConfig = NonNullable<CaConfig['crl']>;
export type IndexFollowConfig = NonNullable<CaConfig['index']>;
