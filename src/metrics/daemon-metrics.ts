// The metrics every signing process of the daemon starts with (one process, or the primary): its registry and the
// HSM, pre-signer, change-feed, index.txt and lease metrics registered on it.
import type { Registry } from 'prom-client';
import type { Clock } from '../clock';
import { ChangeMetrics } from './change-metrics';
import { ComplianceMetrics } from './compliance-metrics';
import { HsmMetrics } from './hsm-metrics';
import { IndexMetrics } from './index-metrics';
import { LeaseMetrics } from './lease-metrics';
import { PreSignerMetrics } from './presign-metrics';
import { createRegistry } from './registry';

export interface DaemonMetrics {
  registry: Registry;
  hsmMetrics: HsmMetrics;
  preSignerMetrics: PreSignerMetrics;
  changeMetrics: ChangeMetrics;
  indexMetrics: IndexMetrics;
  leaseMetrics: LeaseMetrics;
  complianceMetrics: ComplianceMetrics;
}

export function createDaemonMetrics(clock: Clock): DaemonMetrics {
  const registry = createRegistry();
  return {
    registry,
    hsmMetrics: new HsmMetrics(registry),
    preSignerMetrics: new PreSignerMetrics(registry, clock),
    changeMetrics: new ChangeMetrics(registry),
    indexMetrics: new IndexMetrics(registry),
    leaseMetrics: new LeaseMetrics(registry),
    complianceMetrics: new ComplianceMetrics(registry),
  };
}
