// CA/B Forum profile metrics (README "CA/B Forum profile"): certificates first recorded, and so answered "unknown"
// until then, more than 15 minutes after they were published (BR 4.9.9). CAs under compliance: cabf only.
import { Counter, Registry } from 'prom-client';
import type { LateAnswers, LateVia } from '../compliance/late-answers';

export class ComplianceMetrics implements LateAnswers {
  private readonly late: Counter<'ca' | 'via'>;

  /** The CAs under compliance: cabf, set by each (re)load of the config. */
  cabfCas: ReadonlySet<string> = new Set();

  constructor(registry: Registry) {
    this.late = new Counter({
      name: 'ocsp_certificates_unknown_past_deadline_total',
      help: 'CAs under compliance cabf: certificates first recorded (answered unknown until then) more than 15 minutes after they were published (CA/B Forum BR 4.9.9), by how they arrived (publishing, index).',
      labelNames: ['ca', 'via'],
      registers: [registry],
    });
  }

  recordedLate(ca: string, via: LateVia, n: number): void {
    if (n > 0 && this.cabfCas.has(ca)) this.late.inc({ ca, via }, n);
  }
}
