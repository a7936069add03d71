// Reads a token PIN from an environment variable (then removed from it), a file or a terminal prompt; never logs or
// echoes it.
import { readFileSync, statSync } from 'node:fs';
import * as pkcs11js from 'pkcs11js';
import type { PinSource } from '../config/schema';
import { pkcs11Code } from './pkcs11-errors';

export class PinError extends Error {
  override name = 'PinError';
}

/**
 * How a token turned a PIN down: `refused` (wrong or malformed: the operator fixes the PIN source) or `locked`
 * (locked or expired: only the token's security officer can help). Either way a retry is never useful, and a
 * wrong PIN tried again counts toward the lock (PKCS#11 v2.40 section 5.6, C_Login).
 */
export type PinRejection = 'refused' | 'locked';

const REFUSED = new Set([pkcs11js.CKR_PIN_INCORRECT, pkcs11js.CKR_PIN_INVALID, pkcs11js.CKR_PIN_LEN_RANGE]);
const LOCKED = new Set([pkcs11js.CKR_PIN_LOCKED, pkcs11js.CKR_PIN_EXPIRED]);

/** The rejection a PKCS#11 error (from C_Login) stands for, if it is one. */
export function pinRejection(e: unknown): PinRejection | undefined {
  const code = pkcs11Code(e);
  if (code === undefined) return undefined;
  return REFUSED.has(code) ? 'refused' : LOCKED.has(code) ? 'locked' : undefined;
}

export interface PinContext {
  /** e.g. 'token "demo"': used in messages, never the PIN itself. */
  what: string;
  env?: NodeJS.ProcessEnv;
  resolvePath?: (p: string) => string;
  warn?: (msg: string) => void;
}

// PINs taken out of an environment, by variable: two tokens may name the same one.
const taken = new WeakMap<NodeJS.ProcessEnv, Map<string, string>>();

/**
 * The PIN in environment variable `name`, removed from `env` once read: deleting from process.env unsets it in the
 * process's environment, so no process started later (a serving process, a module's helper) inherits it. The value
 * is kept here for later reads (a token coming up again after a fault logs in with it).
 */
export function takeEnvPin(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  let pins = taken.get(env);
  if (!pins) taken.set(env, (pins = new Map()));
  const value = env[name];
  if (value) pins.set(name, value);
  delete env[name];
  return pins.get(name);
}

/**
 * How a token gets its PIN: from the environment, taken now (before any process is started) and handed out when
 * asked; from a file or a prompt, read when asked.
 */
export function pinReader(source: PinSource, ctx: PinContext): () => Promise<string> {
  if (!('env' in source)) return () => readPin(source, ctx);
  const value = takeEnvPin(source.env, ctx.env);
  return async () => value ?? missingEnvPin(source.env, ctx);
}

export async function readPin(source: PinSource, ctx: PinContext): Promise<string> {
  if ('env' in source) return takeEnvPin(source.env, ctx.env) ?? missingEnvPin(source.env, ctx);
  if ('file' in source) {
    const file = ctx.resolvePath ? ctx.resolvePath(source.file) : source.file;
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
      // A PIN file others can read is a finding an operator wants to hear about.
      if (statSync(file).mode & 0o044) ctx.warn?.(`${ctx.what}: PIN file ${file} is readable by group or others`);
    } catch (e) {
      throw new PinError(`${ctx.what}: cannot read PIN file ${file} (pin.file): ${(e as NodeJS.ErrnoException).code ?? e}`);
    }
    const pin = text.replace(/\r?\n$/, '');
    if (!pin) throw new PinError(`${ctx.what}: PIN file ${file} (pin.file) is empty`);
    return pin;
  }
  return promptPin(ctx.what);
}

function missingEnvPin(name: string, ctx: PinContext): never {
  throw new PinError(`${ctx.what}: environment variable ${name} (pin.env) is not set or empty`);
}

function promptPin(what: string): Promise<string> {
  const stdin = process.stdin;
  if (!stdin.isTTY) {
    return Promise.reject(new PinError(`${what}: pin.prompt needs a terminal on stdin; use pin.env or pin.file`));
  }
  process.stderr.write(`PIN for ${what}: `);
  return new Promise((resolve, reject) => {
    let pin = '';
    stdin.setRawMode(true);
    stdin.resume();
    const onData = (chunk: Buffer) => {
      for (const ch of chunk.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return finish(() => resolve(pin));
        if (ch === '\u0003') return finish(() => reject(new PinError(`${what}: PIN entry cancelled`)));
        if (ch === '\u007f' || ch === '\b') pin = pin.slice(0, -1);
        else pin += ch;
      }
    };
    const finish = (then: () => void) => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
      then();
    };
    stdin.on('data', onData);
  });
}
