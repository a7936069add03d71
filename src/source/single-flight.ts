// Concurrent requests for the same certificates share one signature instead of each taking one from the HSM, as
// long as no status change for them was applied since it began, and never a refusal meant for another client
// (flights.ts).
import type { ChangeSignal } from './applied-changes';
import { Flights } from './flights';
import type { OcspResponse, RequestContext, ResolvedRequest, Source } from './source';

export class SingleFlight implements Source {
  private readonly flights: Flights<OcspResponse>;

  constructor(
    private readonly next: Source,
    changes?: ChangeSignal,
  ) {
    this.flights = new Flights(changes);
  }

  response(req: ResolvedRequest, ctx: RequestContext): Promise<OcspResponse> {
    // A nonce makes every response unique: nothing to share.
    if (req.nonce) return this.next.response(req, ctx);
    const ca = req.authority.name;
    return this.flights.run(flightKey(req), req.certIds.map((c) => ({ ca, serial: c.serial })), ctx, () => this.next.response(req, ctx));
  }

  get pending(): number {
    return this.flights.size;
  }
}

/** Same authority, same CertIDs (hash algorithm included, since the response echoes it), same order. */
function flightKey(req: ResolvedRequest): string {
  return req.authority.name + '|' + req.certIds.map((c) => `${c.hash}:${c.issuerNameHash.toString('hex')}:${c.issuerKeyHash.toString('hex')}:${c.serial}`).join('|');
}
