// The config file's schema: every option, its default and its validation (documented in README "Configuration").
import { z } from 'zod';
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

const keyRef = z
  .object({ label: z.string().min(1).optional(), id: z.string().regex(/^([0-9a-fA-F]{2})+$/, 'hex bytes, e.g. "0a1b"').optional() })
  .strict()
  .refine((k) => (k.label === undefined) !== (k.id === undefined), { message: 'set exactly one of label: NAME or id: HEX' })
  .transform((k): { label: string } | { id: string } => (k.label !== undefined ? { label: k.label } : { id: k.id! }));

const token = z
  .object({
    name,
    module: z.string().min(1),
    tokenLabel: z.string().min(1).max(32),
    pin: pinSource,
    sessions: z.number().int().min(1).max(64).default(4),
  })
  .strict();

const ca = z
  .object({
    name,
    certificate: z.string().min(1),
    signer: z
      .object({
        token: name,
        key: keyRef,
        /** Delegated responder certificate; omitted when the CA signs with its own key. */
        certificate: z.string().min(1).optional(),
      })
      .strict(),
    validity: duration.optional(),
    responderId: z.enum(['byKey', 'byName']).optional(),
  })
  .strict();

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
        responseTimeout: duration.default('5s'),
      })
      .strict()
      .default({}),
    dataDir: z.string().min(1).default('data'),
    store: z
      .object({ type: z.literal('sqlite').default('sqlite'), path: z.string().min(1).default('ocsp-hsm.sqlite') })
      .strict()
      .default({}),
    defaults: z
      .object({ validity: duration.default('1d'), responderId: z.enum(['byKey', 'byName']).default('byKey') })
      .strict()
      .default({}),
    log: z.object({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).strict().default({}),
    tokens: z.array(token).min(1),
    cas: z.array(ca).min(1),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    unique(cfg.tokens.map((t) => t.name), ['tokens'], ctx);
    unique(cfg.cas.map((c) => c.name), ['cas'], ctx);
    const tokenNames = new Set(cfg.tokens.map((t) => t.name));
    cfg.cas.forEach((c, i) => {
      if (!tokenNames.has(c.signer.token)) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['cas', i, 'signer', 'token'],
          message: `no token named "${c.signer.token}" under tokens`,
        });
      }
    });
  });

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
