// Runs a fuzz target: every input of its committed corpus as it is (findings kept there stay regression tests),
// then mutations of the corpus for a bounded time under fast-check, from a seed that is printed so a failure
// replays. A failing input is written to a file, ready to be copied into the corpus.
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import fc from 'fast-check';

/** test/fuzz/ in the source tree (this file runs from dist/test/fuzz/). */
export const FUZZ_DIR = resolve(__dirname, '../../../test/fuzz');

export interface FuzzTarget {
  /** Also the corpus folder, test/fuzz/corpus/NAME/. */
  name: string;
  /** File name extension of a saved finding. */
  ext: string;
  /** Inputs made from the corpus (and, for targets that build on another's, other corpora). */
  arbitrary(corpus: Buffer[]): fc.Arbitrary<Buffer>;
  /** Throws when the invariant does not hold for this input. */
  check(input: Buffer): void | Promise<void>;
  start?(): Promise<void>;
  stop?(): Promise<void>;
}

export function corpusOf(name: string): { file: string; bytes: Buffer }[] {
  const dir = join(FUZZ_DIR, 'corpus', name);
  return readdirSync(dir).sort().map((f) => ({ file: join(dir, f), bytes: readFileSync(join(dir, f)) }));
}

export interface FuzzOptions {
  /** Time for the mutated inputs, after the corpus. */
  seconds: number;
  seed: number;
  /** fast-check's counterexample path: replays exactly one failing run of `seed`. */
  path?: string;
  /** Where a failing input is written (default: $TMPDIR/ocsp-hsm-fuzz-findings). */
  findingsDir?: string;
}

export interface FuzzResult {
  corpusInputs: number;
  mutatedInputs: number;
  seconds: number;
}

/** A check running longer than this on one input is a finding: a hang or work far out of proportion to it. */
const SLOW_INPUT_MS = 5000;

export class FuzzFailure extends Error {
  override name = 'FuzzFailure';
}

export async function runTarget(target: FuzzTarget, o: FuzzOptions): Promise<FuzzResult> {
  const corpus = corpusOf(target.name);
  const started = performance.now();
  await target.start?.();
  try {
    for (const { file, bytes } of corpus) {
      try {
        await checkTimed(target, bytes);
      } catch (e) {
        throw new FuzzFailure(`${target.name}: corpus input ${file} fails: ${(e as Error).stack ?? e}`);
      }
    }
    let mutatedInputs = 0;
    const property = fc.asyncProperty(target.arbitrary(corpus.map((c) => c.bytes)), async (input) => {
      mutatedInputs++;
      await checkTimed(target, input);
    });
    const details = await fc.check(property, {
      seed: o.seed,
      numRuns: o.path ? 1 : Number.MAX_SAFE_INTEGER,
      interruptAfterTimeLimit: o.seconds * 1000,
      markInterruptAsFailure: false,
      ...(o.path ? { path: o.path } : {}),
    });
    if (details.failed) {
      const input = details.counterexample![0] as Buffer;
      const file = saveFinding(target, input, o.findingsDir);
      throw new FuzzFailure([
        `${target.name}: an input breaks the invariant (seed ${details.seed}, path "${details.counterexamplePath}")`,
        `  input (${input.length} bytes) written to ${file}`,
        `  replay:  OCSP_HSM_FUZZ_SEED=${details.seed} OCSP_HSM_FUZZ_PATH="${details.counterexamplePath}" node --test --test-name-pattern='^${target.name}$' dist/test/fuzz.test.js`,
        `  keep it: cp ${file} test/fuzz/corpus/${target.name}/<what-it-is>.${target.ext}`,
        `  ${String((details.errorInstance as Error | undefined)?.stack ?? details.errorInstance)}`,
      ].join('\n'));
    }
    return { corpusInputs: corpus.length, mutatedInputs, seconds: (performance.now() - started) / 1000 };
  } finally {
    await target.stop?.();
  }
}

async function checkTimed(target: FuzzTarget, input: Buffer): Promise<void> {
  const t0 = performance.now();
  await target.check(input);
  const ms = performance.now() - t0;
  if (ms > SLOW_INPUT_MS) throw new Error(`one input of ${input.length} bytes took ${Math.round(ms)} ms`);
}

function saveFinding(target: FuzzTarget, input: Buffer, dir = join(tmpdir(), 'ocsp-hsm-fuzz-findings')): string {
  const d = join(dir, target.name);
  mkdirSync(d, { recursive: true });
  const file = join(d, `finding-${createHash('sha256').update(input).digest('hex').slice(0, 12)}.${target.ext}`);
  writeFileSync(file, input);
  return file;
}

/** OCSP_HSM_FUZZ_SEED, or a fresh one (printed by the caller). */
export function seedFromEnv(env = process.env): number {
  return env.OCSP_HSM_FUZZ_SEED !== undefined ? Number(env.OCSP_HSM_FUZZ_SEED) : Math.floor(Math.random() * 2 ** 31);
}
