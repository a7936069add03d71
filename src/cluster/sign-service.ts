// The primary's side of RemoteSigner: takes the binding's signing permits (per key, then per token) and signs on the
// token, for every serving process alike. Bindings are kept per configuration generation, so a serving process that
// has not yet switched to a reloaded configuration still signs with the keys it was built for.
import type { Clock } from '../clock';
import { SignerUnavailableError } from '../hsm/faults';
import { acquireAll } from '../signing/permits';
import type { SignContext } from '../signing/signing-limiter';
import type { Authority } from '../source/authority';
import { asBuffer, bindingKey, SignRequest } from './remote-signer';

export class SignService {
  private readonly generations = new Map<number, Map<string, Authority>>();

  constructor(private readonly clock: Clock) {}

  /** Serving processes built from `generation` sign with these authorities. */
  publish(generation: number, authorities: readonly Authority[]): void {
    this.generations.set(generation, new Map(authorities.map((a) => [bindingKey(a), a])));
  }

  /** No serving process uses `generation` any more. */
  retire(generation: number): void {
    this.generations.delete(generation);
  }

  get published(): number[] {
    return [...this.generations.keys()];
  }

  readonly sign = async (r: SignRequest): Promise<Buffer> => {
    const a = this.generations.get(r.g)?.get(r.k);
    if (!a) throw new SignerUnavailableError(`binding ${r.k.replace('\0', ' ')} of configuration ${r.g} is no longer in use`);
    // The serving process read the certificates itself: should a file have changed between its read and ours,
    // a signature by another key would make an answer no client accepts.
    if (a.signerId !== r.s) throw new SignerUnavailableError(`the signer certificate of ${a.name} (${a.binding}) differs between processes`);
    const ctx: SignContext = { lane: r.l, ...(r.c !== undefined ? { client: r.c } : {}), ...(r.r !== undefined ? { deadlineMs: this.clock.monotonicMs() + r.r } : {}), ...(r.i ? { immediate: true } : {}) };
    const permit = await acquireAll(a.limiters, ctx);
    try {
      return await a.signer.sign(asBuffer(r.d), ctx);
    } finally {
      permit.release();
    }
  };
}
