// `ocsp-hsm keys generate` and `ocsp-hsm keys list`: responder keys made inside a configured token, and what the
// config's modules show (tokens, key pairs, which CA binding uses each).
import { randomBytes } from 'node:crypto';
import type { LoadedConfig } from '../config/load';
import { PUBLIC_FILE, writeFileWithMode } from '../file-modes';
import { formatKeyUri } from '../config/pkcs11-uri';
import type { KeyRef } from '../config/schema';
import { AdminSession, SlotEntry, slotsOf } from '../hsm/admin-session';
import { generateSigningKey, KEY_TYPES, KeyType } from '../hsm/key-generation';
import { KeyPairEntry, listKeyPairs, refMatches } from '../hsm/key-inventory';
import { describePublicKey, describeKeyRef } from '../hsm/keys';
import { finalizeModules } from '../hsm/module';
import { describePkcs11Error } from '../hsm/pkcs11-errors';
import { configuredToken, openTokenModule, pinOf, withTokenSession } from './token-session';
import { EXIT_FAILURE, EXIT_OK, exitCodeFor } from './exit-codes';
import { UsageError } from './usage';

export interface KeysContext {
  loaded: LoadedConfig;
  out: (line: string) => void;
}

export interface GenerateOptions {
  token?: string;
  label?: string;
  id?: string;
  type?: string;
  out?: string;
}

export async function keysGenerate(ctx: KeysContext, o: GenerateOptions): Promise<void> {
  const token = configuredToken(ctx.loaded, o.token);
  if (!o.label) throw new UsageError('--label LABEL is required (the CKA_LABEL the config will name the key by)');
  if (!o.type || !(KEY_TYPES as readonly string[]).includes(o.type)) throw new UsageError(`--type: one of ${KEY_TYPES.join(', ')}`);
  const id = o.id === undefined ? randomBytes(8) : parseHexId(o.id, '--id');
  const key = await withTokenSession(ctx.loaded, token, true, (s) => generateSigningKey(s.session, o.type as KeyType, o.label!, id));
  const pem = key.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  if (o.out) writeFileWithMode(o.out, pem, PUBLIC_FILE);
  ctx.out(`generated ${describePublicKey(key.publicKey).text} key pair on ${token.what}`);
  ctx.out(`label: ${key.label}`);
  ctx.out(`id:    ${key.id}`);
  ctx.out(`uri:   ${formatKeyUri({ tokenLabel: token.config.tokenLabel, label: key.label, id: key.id })}`);
  if (o.out) ctx.out(`public key written to ${o.out}`);
  process.stdout.write(pem);
}

export function parseHexId(text: string, option: string): Buffer {
  const hex = text.replace(/^0x/i, '').replace(/:/g, '');
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw new UsageError(`${option}: "${text}" is not hex bytes (e.g. 0a1b2c3d)`);
  return Buffer.from(hex, 'hex');
}

/**
 * Every token of every module the config names; key pairs of configured tokens (logged in), or what a token shows
 * without login. Returns the exit code: 1 when a configured token could not be found or opened, the PIN codes
 * (3, 4) when a token turned its PIN down, else 0; the whole list is printed either way.
 */
export async function keysList(ctx: KeysContext, tokenName?: string): Promise<number> {
  const { config } = ctx.loaded;
  const only = tokenName === undefined ? undefined : configuredToken(ctx.loaded, tokenName);
  const modules = only ? [only.config.module] : [...new Set(config.tokens.map((t) => t.module))];
  let code = EXIT_OK;
  const failed = (c: number) => (code = Math.max(code, c));
  try {
    for (const path of modules) {
      ctx.out(`module ${path}`);
      const configured = config.tokens.filter((t) => t.module === path && (!only || t === only.config));
      let module;
      try {
        module = openTokenModule(configuredToken(ctx.loaded, configured[0]!.name));
      } catch (e) {
        ctx.out(`  cannot load: ${(e as Error).message}`);
        failed(EXIT_FAILURE);
        continue;
      }
      const slots = slotsOf(module);
      for (const s of slots.filter((s) => !only || (s.initialized && s.label === only.config.tokenLabel))) {
        const t = s.initialized ? configured.find((c) => c.tokenLabel === s.label) : undefined;
        const state = s.initialized ? 'initialized' : 'not initialized';
        ctx.out(`  slot ${s.slotId}: token "${s.label}", serial ${s.serial || '-'}, ${state}${t ? `, configured as "${t.name}"` : only ? '' : ', not configured'}`);
        if (s.initialized) failed(await listSlot(ctx, s.slot, s.label, t?.name));
      }
      for (const t of configured) {
        if (slots.some((s) => s.initialized && s.label === t.tokenLabel)) continue;
        ctx.out(`  token "${t.name}" (tokenLabel "${t.tokenLabel}") is configured but no initialized token has this label`);
        failed(EXIT_FAILURE);
      }
    }
  } catch (e) {
    throw new Error(`keys list: ${describePkcs11Error(e)}`, { cause: e });
  } finally {
    finalizeModules();
  }
  return code;
}

/** The key pairs of one token: logged in when it is configured (the exit code says if that failed), else what it shows. */
async function listSlot(ctx: KeysContext, slot: SlotEntry['slot'], label: string, configuredName: string | undefined): Promise<number> {
  const configuredAs = configuredName === undefined ? undefined : configuredToken(ctx.loaded, configuredName);
  const session = AdminSession.open(slot, configuredAs?.what ?? `token "${label}"`, false);
  let code = EXIT_OK;
  try {
    if (configuredAs) {
      try {
        session.login(await pinOf(ctx.loaded, configuredAs));
      } catch (e) {
        ctx.out(`    not logged in: ${(e as Error).message}; showing public objects only`);
        code = exitCodeFor(e);
      }
    }
    printKeyPairs(ctx, listKeyPairs(session.session), configuredName, session.isLoggedIn);
  } finally {
    session.close();
  }
  return code;
}

function printKeyPairs(ctx: KeysContext, pairs: KeyPairEntry[], tokenName: string | undefined, loggedIn: boolean): void {
  const bindings = tokenName === undefined ? [] : bindingsOn(ctx.loaded, tokenName);
  const rows = pairs.map((p) => [
    p.label || '(no label)',
    p.id || '-',
    p.type,
    p.hasPrivate && p.hasPublic ? 'private+public' : p.hasPrivate ? 'private only' : 'public only',
    bindings.filter((b) => refMatches(b.ref, p)).map((b) => b.field).join(', ') || '-',
  ]);
  if (rows.length === 0) ctx.out(`    no keys${loggedIn ? '' : ' visible without login'}`);
  else table(ctx, [['label', 'id', 'type', 'objects', 'used by'], ...rows]);
  // Only a logged-in listing can say a private key is absent.
  if (!loggedIn) return;
  for (const b of bindings) {
    if (!pairs.some((p) => p.hasPrivate && refMatches(b.ref, p))) ctx.out(`    missing: ${b.field} names ${describeKeyRef(b.ref)}, and no private key on this token matches`);
  }
}

/** The config's key bindings on a token: `cas[0].signer.key (CA "x")`, `cas[0].previousKeys[1].signer.key (CA "x")`. */
function bindingsOn(loaded: LoadedConfig, tokenName: string): { field: string; ref: KeyRef }[] {
  return loaded.config.cas.flatMap((ca, i) => [
    ...(ca.signer.token === tokenName ? [{ field: `cas[${i}].signer.key (CA "${ca.name}")`, ref: ca.signer.key }] : []),
    ...ca.previousKeys.flatMap((k, j) =>
      k.signer.token === tokenName ? [{ field: `cas[${i}].previousKeys[${j}].signer.key (CA "${ca.name}")`, ref: k.signer.key }] : [],
    ),
  ]);
}

function table(ctx: KeysContext, rows: string[][]): void {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  for (const r of rows) ctx.out(`    ${r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]!))).join('  ')}`);
}
