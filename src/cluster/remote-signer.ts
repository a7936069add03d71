// A serving process's Signer: each signature is made in the primary process, which holds the tokens and the signing
// limiters, so the HSM's ceiling, queue and per-client fairness are one, whatever the number of serving processes.
import type { Clock } from '../clock';
import type { SignatureAlgorithm, Signer } from '../signing/signer';
import type { Lane, SignContext } from '../signing/signing-limiter';
import { SignerUnavailableError, SignTimeoutError } from '../hsm/faults';
import { Channel, ChannelClosedError, ChannelTimeoutError } from './channel';

export const SIGN_OP = 'sign';

/** One signature asked of the primary. Short keys: this crosses the IPC channel once per signature. */
export interface SignRequest {
  /** The configuration generation the serving process bound its authorities from (a reload makes a new one). */
  g: number;
  /** The binding: bindingKey() of the authority. */
  k: string;
  /** The signer certificate's id (Authority.signerId): the primary refuses to sign for another. */
  s: string;
  d: Buffer;
  l: Lane;
  c?: string;
  /** Milliseconds left until the request's deadline when it was sent (monotonic clocks are per process). */
  r?: number;
  /** SignContext.immediate: signed only if the primary has a permit free at once. */
  i?: 1;
}

/** Names a binding the same way in every process: CA name and which of its keys. */
export function bindingKey(a: { name: string; binding: string }): string {
  return `${a.name}\0${a.binding}`;
}

export interface RemoteBinding {
  generation: number;
  key: string;
  signerId: string;
}

export class RemoteSigner implements Signer {
  constructor(
    private readonly channel: Channel,
    private readonly binding: RemoteBinding,
    readonly algorithm: SignatureAlgorithm,
    private readonly clock: Clock,
    /** Longest wait for the primary beyond the request's own deadline (its sign timeout and some slack). */
    private readonly graceMs: number,
  ) {}

  sign(data: Buffer, ctx?: SignContext): Promise<Buffer> {
    const b = this.binding;
    const left = ctx?.deadlineMs === undefined ? undefined : Math.max(0, ctx.deadlineMs - this.clock.monotonicMs());
    const req: SignRequest = { g: b.generation, k: b.key, s: b.signerId, d: data, l: ctx?.lane ?? 'live' };
    const client = ctx?.client;
    if (client !== undefined) req.c = client;
    if (left !== undefined) req.r = left;
    if (ctx?.immediate) req.i = 1;
    return this.channel.request<Uint8Array>(SIGN_OP, req, (left ?? 0) + this.graceMs).then(asBuffer, unreachable);
  }
}

/** The primary gone or not answering is the HSM out of reach for this process: tryLater, as for a token down. */
function unreachable(e: unknown): never {
  if (e instanceof ChannelClosedError) throw new SignerUnavailableError(`the primary process is gone: ${e.message}`);
  if (e instanceof ChannelTimeoutError) throw new SignTimeoutError(`the primary process did not answer: ${e.message}`);
  throw e;
}

/** IPC's structured clone may hand a Buffer over as a plain Uint8Array: the same bytes, no copy. */
export function asBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}
