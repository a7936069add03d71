// `config check` on the HSM: each token's module loads, the token is present, its PIN is read and accepted, and
// each key is found and proved against its certificate, by the HsmToken activation the daemon uses. One short-lived
// token object per key, so that every key's problem is found; each one logs out and closes its session.
import type { LoadedConfig } from '../config/load';
import type { TokenConfig } from '../config/schema';
import { findSlotByLabel, Pkcs11Module } from '../hsm/module';
import { readPin } from '../hsm/pin';
import { HsmToken, NULL_OBSERVER, PinRejectedError, SILENT_LOG, TokenKeySpec } from '../hsm/token';
import type { Clock } from '../clock';
import type { CheckReport } from './check-report';

export interface KeyToCheck {
  /** e.g. cas[0].signer.key */
  field: string;
  spec: TokenKeySpec;
}

/**
 * Reports every problem of token `t` (tokens[index]) and of the keys bound to it. A token that cannot be logged
 * in to skips its keys, with a line saying so: the PIN is tried once at most, as a wrong one counts toward a lock.
 */
export async function checkToken(loaded: LoadedConfig, t: TokenConfig, index: number, keys: KeyToCheck[], clock: Clock, report: CheckReport): Promise<void> {
  const field = `tokens[${index}]`;
  const what = `token "${t.name}"`;
  const skipKeys = () => {
    if (keys.length > 0) report.skipped(`${keys.map((k) => k.field).join(', ')}: not checked, ${what} (${field}) could not be logged in to`);
  };
  let module: Pkcs11Module;
  try {
    module = Pkcs11Module.load(t.module);
  } catch (e) {
    report.problem(`${field}.module: ${(e as Error).message}`);
    return skipKeys();
  }
  try {
    if (findSlotByLabel(module.p11, t.tokenLabel) === undefined) {
      report.problem(`${field}.tokenLabel: no initialized token labelled "${t.tokenLabel}" in module ${t.module}`);
      return skipKeys();
    }
  } catch (e) {
    report.problem(`${field}: cannot list the tokens of module ${t.module}: ${(e as Error).message}`);
    return skipKeys();
  }
  let pin: string;
  try {
    pin = await readPin(t.pin, { what, resolvePath: loaded.path, warn: (m) => report.warning(`${field}.pin: ${m}`) });
  } catch (e) {
    report.problem(`${field}.pin: ${(e as Error).message}`);
    return skipKeys();
  }
  const open = (key?: TokenKeySpec) => {
    const token = new HsmToken({
      name: t.name,
      describe: what,
      modulePath: t.module,
      label: t.tokenLabel,
      sessions: 1,
      pin: async () => pin,
      signTimeoutMs: t.signTimeout,
      callTimeoutMs: t.callTimeout,
      backoff: { initialMs: t.recovery.initialBackoff, maxMs: t.recovery.maxBackoff },
      healthCheckMs: 0,
      clock,
      observer: NULL_OBSERVER,
      log: SILENT_LOG,
    });
    if (key) token.addKey(key);
    return token;
  };
  // Login alone first: a refused PIN is then reported once, and not tried again for each key.
  const login = open();
  try {
    await login.activate();
  } catch (e) {
    report.problem(`${field}${e instanceof PinRejectedError ? '.pin' : ''}: ${(e as Error).message}`);
    return skipKeys();
  } finally {
    await login.close();
  }
  for (const key of keys) {
    const token = open(key.spec);
    try {
      await token.activate();
      report.keysProved++;
    } catch (e) {
      report.problem((e as Error).message);
    } finally {
      await token.close();
    }
  }
}
