// Opens a configured token for the administration commands (keys, csr): module, slot, session, PIN from the
// token's configured source (never the command line), and closes it all again.
import type { LoadedConfig } from '../config/load';
import type { TokenConfig } from '../config/schema';
import { AdminError, AdminSession, findTokenSlot, openAdminModule } from '../hsm/admin-session';
import { finalizeModules } from '../hsm/module';
import { readPin } from '../hsm/pin';
import { UsageError } from './usage';

export interface ConfiguredToken {
  config: TokenConfig;
  /** 'token "main" (tokens[0], tokenLabel "x")', as the daemon names it. */
  what: string;
}

export function configuredToken(loaded: LoadedConfig, name: string | undefined, option = '--token'): ConfiguredToken {
  const tokens = loaded.config.tokens;
  if (!name) throw new UsageError(`${option} NAME is required (a token name from ${loaded.file}: ${tokens.map((t) => t.name).join(', ')})`);
  const i = tokens.findIndex((t) => t.name === name);
  if (i < 0) throw new UsageError(`${option}: no token named "${name}" in ${loaded.file} (have: ${tokens.map((t) => t.name).join(', ')})`);
  const config = tokens[i]!;
  return { config, what: `token "${config.name}" (tokens[${i}], tokenLabel "${config.tokenLabel}")` };
}

/** Reads the token's PIN as the daemon does; a warning (a PIN file others can read) goes to stderr. */
export function pinOf(loaded: LoadedConfig, token: ConfiguredToken): Promise<string> {
  return readPin(token.config.pin, {
    what: token.what,
    resolvePath: loaded.path,
    warn: (m) => process.stderr.write(`ocsp-hsm: warning: ${m}\n`),
  });
}

/** Runs `fn` on a logged-in session of the token, then logs out, closes and finalizes the module. */
export async function withTokenSession<T>(loaded: LoadedConfig, token: ConfiguredToken, readWrite: boolean, fn: (s: AdminSession) => Promise<T> | T): Promise<T> {
  let session: AdminSession | undefined;
  try {
    const module = openTokenModule(token);
    const slot = findTokenSlot(module, token.config.tokenLabel);
    if (!slot) throw new AdminError(`${token.what}: no initialized token with this label in module ${token.config.module} (see "ocsp-hsm keys list")`);
    session = AdminSession.open(slot, token.what, readWrite);
    session.login(await pinOf(loaded, token));
    return await fn(session);
  } finally {
    session?.close();
    finalizeModules();
  }
}

export function openTokenModule(token: ConfiguredToken) {
  try {
    return openAdminModule(token.config.module);
  } catch (e) {
    throw new AdminError(`${token.what}: ${(e as Error).message}`);
  }
}
