// A signer outside its certificate's validity makes every answer of its binding one clients reject ("certificate
// has expired"): such a binding neither signs nor serves what it signed before. Its requests get tryLater, the
// pre-signer skips it, readiness names it, and the log says so when it starts and stops.
import type { Clock } from '../clock';
import { TryLaterError } from '../ocsp/errors';
import type { Authority } from './authority';
import type { HotAnswer, OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

/** Why the binding's signer may not be used at `nowMs`, or undefined when it may. */
export function signerProblem(a: Authority, nowMs: number): string | undefined {
  const { notBefore, notAfter } = a.signerValidity;
  if (nowMs > notAfter) return `signer certificate expired at ${new Date(notAfter).toISOString()}`;
  if (nowMs < notBefore) return `signer certificate is not valid before ${new Date(notBefore).toISOString()}`;
  return undefined;
}

export function describeBinding(a: Authority): string {
  return a.binding === 'current' ? `CA "${a.name}"` : `CA "${a.name}" (${a.binding})`;
}

export class SignerValidity {
  /** The last problem seen per binding: the log tells edges, not every request. */
  private readonly last = new Map<Authority, string | undefined>();

  constructor(
    private readonly authorities: readonly Authority[],
    private readonly clock: Clock,
    private readonly log: { info(obj: object, msg: string): void; error(obj: object, msg: string): void },
  ) {}

  /** Checked on every request: two comparisons, and a log line only when the answer changes. */
  problem(a: Authority): string | undefined {
    const now = this.clock.now().getTime();
    const v = a.signerValidity;
    if (now >= v.notBefore && now <= v.notAfter && this.last.get(a) === undefined) return undefined;
    const p = signerProblem(a, now);
    if (p !== this.last.get(a)) {
      this.last.set(a, p);
      if (p) this.log.error({ ca: a.name, binding: a.binding, reason: p }, 'signer not used: its requests get tryLater until its certificate is replaced (reload)');
      else this.log.info({ ca: a.name, binding: a.binding }, 'signer certificate valid: answering again');
    }
    return p;
  }

  /** Readiness: one line per binding that cannot answer now. */
  problems(): string[] {
    return this.authorities.flatMap((a) => {
      const p = this.problem(a);
      return p ? [`${describeBinding(a)}: ${p}; its requests get tryLater`] : [];
    });
  }
}

/** The request path's gate (after the issuer filter): nothing of a binding whose signer is unusable is answered. */
export class SignerValidityGate implements Source {
  /** Present when `next` answers hot (source.ts: Source.hot). */
  readonly hot?: (req: ResolvedRequest) => HotAnswer | undefined;

  constructor(
    private readonly next: Source,
    private readonly validity: SignerValidity,
  ) {
    const nextHot = next.hot?.bind(next);
    if (nextHot) this.hot = (req) => this.hotAnswer(req, nextHot);
  }

  private hotAnswer(req: ResolvedRequest, nextHot: (req: ResolvedRequest) => HotAnswer | undefined): HotAnswer | undefined {
    const a = req.authority;
    if (this.validity.problem(a)) return undefined;
    const inner = nextHot(req);
    // Remembered by the HTTP edge: asked again on every use, so an expiry stops it too.
    return inner && { served: () => (this.validity.problem(a) ? undefined : inner.served()) };
  }

  response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    const p = this.validity.problem(req.authority);
    if (p) return Promise.reject(new TryLaterError(`${describeBinding(req.authority)}: ${p}`));
    return this.next.response(req, ctx);
  }
}
