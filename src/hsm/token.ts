// Activates a configured token at startup: load the module, find the token by label, open sessions, log in.
import type { TokenConfig } from '../config/schema';
import { findSlotByLabel, loadModule } from './module';
import { readPin } from './pin';
import { SessionPool } from './session-pool';

export class TokenActivationError extends Error {
  override name = 'TokenActivationError';
}

export interface ActiveToken {
  name: string;
  pool: SessionPool;
}

export async function activateToken(
  cfg: TokenConfig,
  index: number,
  ctx: { resolvePath: (p: string) => string; warn: (msg: string) => void },
): Promise<ActiveToken> {
  const what = `token "${cfg.name}" (tokens[${index}], tokenLabel "${cfg.tokenLabel}")`;
  let p11;
  try {
    p11 = loadModule(cfg.module);
  } catch (e) {
    throw new TokenActivationError(`${what}: tokens[${index}].module: ${(e as Error).message}`);
  }
  const slot = findSlotByLabel(p11, cfg.tokenLabel);
  if (slot === undefined) {
    throw new TokenActivationError(`${what}: no initialized token with this label in module ${cfg.module}`);
  }
  const pin = await readPin(cfg.pin, { what, resolvePath: ctx.resolvePath, warn: ctx.warn });
  const pool = new SessionPool(p11, slot, cfg.sessions);
  try {
    pool.open(pin);
  } catch (e) {
    throw new TokenActivationError(`${what}: ${(e as Error).message}`);
  }
  return { name: cfg.name, pool };
}
