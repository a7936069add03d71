// Builds the signing side from a validated config: tokens, signing limiters and the authorities bound to them
// (bindings.ts); a reload rebinds on the running tokens.
// Shared by the daemon and the one-shot commands that sign (presign).
import type { Logger } from 'pino';
import type { Clock } from '../clock';
import type { LoadedConfig } from '../config/load';
import type { TokenConfig } from '../config/schema';
import { finalizeModules } from '../hsm/module';
import { pinReader } from '../hsm/pin';
import type { SigningLimiter } from '../signing/signing-limiter';
import { HsmToken, KeyCommit } from '../hsm/token';
import type { HsmMetrics } from '../metrics/hsm-metrics';
import type { Authority } from '../source/authority';
import type { IssuerRevocations } from '../source/issuer-revocations';
import { bindAll, Bindings } from './bindings';
import { makeLimiter } from './limiter';
import { StartupError } from './startup-error';

export { StartupError };

export interface SigningDeps {
  logger: Logger;
  clock: Clock;
  /**
   * Called when a token given `waitForToken` did not come up in time, or refused its PIN: the daemon cannot do
   * its job. `cause` decides the exit code (exit-codes.ts).
   */
  onFatal?: (message: string, cause?: unknown) => void;
  /** No live traffic in this process (one-shot presign): pre-signing may use every concurrent slot. */
  presignOnly?: boolean;
}

export interface Signing {
  tokens: Map<string, HsmToken>;
  limiters: Map<string, SigningLimiter>;
  authorities: Authority[];
  /** CA certificates revoked for a compromise reason: refresh from the store once it is open. */
  issuerRevocations: IssuerRevocations;
  /** Each token's settings as loaded (a reload refuses to change them). */
  tokenConfigs: Map<string, string>;
  /** Logs in to every token (in the background for those with waitForToken). */
  activate(): Promise<void>;
  close(): Promise<void>;
}

export function openSigning(loaded: LoadedConfig, deps: SigningDeps, metrics: HsmMetrics): Signing {
  const { config } = loaded;
  const tokens = new Map<string, HsmToken>();
  const limiters = new Map<string, SigningLimiter>();
  const close = async () => {
    await Promise.all([...tokens.values()].map((t) => t.close()));
    finalizeModules();
  };
  try {
    config.tokens.forEach((t, i) => {
      tokens.set(t.name, makeToken(loaded, t, i, deps, metrics));
      limiters.set(t.name, makeLimiter(t.name, t.limits, t.sessions, deps.clock, metrics, !deps.presignOnly));
    });
    const { authorities, issuerRevocations } = bindAll(loaded, tokens, limiters, deps.clock, metrics);
    metrics.watch([...tokens.values()], [...limiters.values()]);
      const tokenConfigs = new Map(config.tokens.map((t) => [t.name, tokenIdentity(t)]));
    return { tokens, limiters, tokenConfigs, authorities, issuerRevocations, activate: () => activateTokens(config.tokens, tokens, deps), close };
  } catch (e) {
    void close();
    throw e;
  }
}

/** What a reload may not change about a token. */
function tokenIdentity(t: TokenConfig): string {
  return JSON.stringify([t.name, t.module, t.tokenLabel, t.sessions, t.pin, t.limits, t.signTimeout, t.callTimeout, t.healthCheckInterval, t.recovery]);
}

export class ReloadError extends Error {
  override name = 'ReloadError';
}

/**
 * The bindings of a changed config (SIGHUP) on the running tokens: certificates, keys and CA settings may change;
 * tokens may not (their sessions and logins stay). New keys are found and proved before anything is swapped.
 */
export async function rebind(current: Signing, loaded: LoadedConfig, clock: Clock, metrics: HsmMetrics): Promise<Bindings & { commit(): void }> {
  const before = [...current.tokens.values()].map((t) => t.name).sort().join(',');
  const after = loaded.config.tokens.map((t) => t.name).sort().join(',');
  if (before !== after || loaded.config.tokens.some((t) => current.tokenConfigs.get(t.name) !== tokenIdentity(t))) {
    throw new ReloadError('tokens changed: restart the daemon to apply token changes (a reload keeps the running tokens)');
  }
  const b = bindAll(loaded, current.tokens, current.limiters, clock, metrics, true);
  // Nothing is put in use until every token has found and proved its new keys: a refusal changes nothing.
  const commits: KeyCommit[] = [];
  for (const token of current.tokens.values()) commits.push(await token.prepareKeys(b.keys.get(token) ?? new Set()));
  return {
    ...b,
    commit: () => {
      for (const c of commits) c.check();
      for (const c of commits) c.apply();
    },
  };
}

function makeToken(loaded: LoadedConfig, t: TokenConfig, i: number, deps: SigningDeps, observer: HsmMetrics): HsmToken {
  const describe = `token "${t.name}" (tokens[${i}], tokenLabel "${t.tokenLabel}")`;
  return new HsmToken({
    name: t.name,
    describe,
    modulePath: t.module,
    label: t.tokenLabel,
    sessions: t.sessions,
    pin: pinReader(t.pin, { what: describe, resolvePath: loaded.path, warn: (m) => deps.logger.warn(m) }),
    signTimeoutMs: t.signTimeout,
    callTimeoutMs: t.callTimeout,
    backoff: { initialMs: t.recovery.initialBackoff, maxMs: t.recovery.maxBackoff },
    healthCheckMs: t.healthCheckInterval,
    clock: deps.clock,
    observer,
    log: deps.logger,
  });
}


/** Tokens without waitForToken must come up now; the others come up in the background while we serve tryLater. */
async function activateTokens(configs: TokenConfig[], tokens: Map<string, HsmToken>, deps: SigningDeps): Promise<void> {
  for (const t of configs) {
    const token = tokens.get(t.name)!;
    if (t.waitForToken === undefined) {
      await token.activate();
      deps.logger.info({ token: t.name, tokenLabel: t.tokenLabel, sessions: t.sessions }, 'token activated; signing keys verified');
      continue;
    }
    deps.logger.info({ token: t.name, waitMs: t.waitForToken }, 'waiting for token in the background');
    token.activateWithin(t.waitForToken).then(
      () => deps.logger.info({ token: t.name, tokenLabel: t.tokenLabel, sessions: t.sessions }, 'token activated; signing keys verified'),
      (e: Error) => deps.onFatal?.(e.message, e),
    );
  }
}

