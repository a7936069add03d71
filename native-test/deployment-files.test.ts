// The deployment files in config/: alert rules and dashboard read only metrics the daemon exports (checked by
// promtool and against a live scrape), the Grafana dashboard is well formed, the systemd unit verifies.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collectDefaultMetrics, Registry } from 'prom-client';
import { parse, stringify } from 'yaml';
import { EXIT_PIN_LOCKED, EXIT_PIN_REFUSED, EXIT_USAGE } from '../src/cli/exit-codes';
import { tempDir } from '../test/support/temp';
import { createTestPki, opensslQuery, ROOT, Responder, startResponder, TestCa, TestPki, variantConfig } from './support/harness';
import { dashboardPanels } from './support/dashboard';
import { grafanaVariableMetricNames, promqlMetricNames } from './support/promql-names';

type MetricType = 'counter' | 'gauge' | 'histogram';

/** What the daemon exports besides prom-client's defaults: the names the rules and the dashboard may use. */
const DAEMON_METRICS: Record<string, MetricType> = {
  ocsp_requests_total: 'counter',
  ocsp_request_duration_seconds: 'histogram',
  ocsp_cache_hits_total: 'counter',
  ocsp_cache_misses_total: 'counter',
  ocsp_cache_entries: 'gauge',
  ocsp_cache_bytes: 'gauge',
  ocsp_request_memo_entries: 'gauge',
  ocsp_request_memo_bytes: 'gauge',
  ocsp_store_query_duration_seconds: 'histogram',
  ocsp_store_up: 'gauge',
  ocsp_store_outages_total: 'counter',
  ocsp_store_refused_calls_total: 'counter',
  ocsp_presigner_backlog: 'gauge',
  ocsp_presigner_last_run_timestamp_seconds: 'gauge',
  ocsp_presigner_last_run_duration_seconds: 'gauge',
  ocsp_presigner_responses_signed_total: 'counter',
  ocsp_presigner_runs_total: 'counter',
  ocsp_stored_responses_due: 'gauge',
  ocsp_stored_responses_earliest_next_update_seconds: 'gauge',
  ocsp_served_response_oldest_age_seconds: 'gauge',
  ocsp_hsm_signatures_total: 'counter',
  ocsp_hsm_sign_duration_seconds: 'histogram',
  ocsp_hsm_errors_total: 'counter',
  ocsp_hsm_sessions: 'gauge',
  ocsp_hsm_token_ready: 'gauge',
  ocsp_hsm_token_readiness_changes_total: 'counter',
  ocsp_hsm_limiter_queue_depth: 'gauge',
  ocsp_hsm_limiter_tokens: 'gauge',
  ocsp_hsm_limiter_rejections_total: 'counter',
  ocsp_hsm_limiter_in_flight: 'gauge',
  ocsp_hsm_limiter_max_concurrent: 'gauge',
  ocsp_status_change_apply_seconds: 'histogram',
  ocsp_status_change_apply_failures_total: 'counter',
  ocsp_status_change_production_failures_total: 'counter',
  ocsp_change_feed_lag_seconds: 'gauge',
  ocsp_index_imports_total: 'counter',
  ocsp_index_last_import_timestamp_seconds: 'gauge',
  ocsp_index_import_failing: 'gauge',
  ocsp_index_kept_revoked_entries: 'gauge',
  ocsp_signer_certificate_expiry_seconds: 'gauge',
  ocsp_ca_certificate_expiry_seconds: 'gauge',
  ocsp_signer_usable: 'gauge',
  ocsp_lease_held: 'gauge',
  ocsp_lease_changes_total: 'counter',
  ocsp_stored_responses_past_update_time: 'gauge',
  ocsp_certificates_unknown_past_deadline_total: 'counter',
  ocsp_connections_open: 'gauge',
  ocsp_connections_total: 'counter',
  ocsp_connections_evicted_total: 'counter',
  ocsp_nonce_requests_total: 'counter',
  ocsp_workers: 'gauge',
  ocsp_worker_restarts_total: 'counter',
  ocsp_cluster_responders: 'gauge',
  ocsp_cluster_applied_lag_changes: 'gauge',
  ocsp_responder_applied_change_seq: 'gauge',
  ocsp_responder_heartbeat_age_seconds: 'gauge',
  ocsp_responder_heartbeat_held: 'gauge',
  ocsp_responder_heartbeats_total: 'counter',
  ocsp_publish_waits_total: 'counter',
  ocsp_publish_wait_seconds: 'histogram',
};
// Exported only by a daemon with several serving processes (server.workers > 1) or the publishing API on: the
// responder below has neither; native-test/workers.test.ts scrapes one that has both.
const ONLY_WITH_WORKERS_OR_PUBLISHING = new Set(['ocsp_workers', 'ocsp_worker_restarts_total', 'ocsp_publish_waits_total', 'ocsp_publish_wait_seconds']);
// Prometheus' own series about each target, usable in rules.
const PROMETHEUS_SERIES = new Set(['up']);

const CONFIG = join(ROOT, 'config');
const ALERTS = join(CONFIG, 'prometheus-alerts.yml');
const DASHBOARD = join(CONFIG, 'grafana-dashboard.json');
const UNIT = join(CONFIG, 'ocsp-hsm.service');

/** prom-client's default metrics (process_*, nodejs_*), with their types, as the daemon's registry gets them. */
async function defaultMetrics(): Promise<Record<string, string>> {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const out: Record<string, string> = {};
  for (const m of await registry.getMetricsAsJSON()) out[m.name] = String(m.type);
  return out;
}

/** Names in `names` that are no series of a known metric (histograms only as _bucket, _sum, _count). */
function unknownNames(names: string[], known: Record<string, string>, extra: Set<string> = new Set()): string[] {
  return names.filter((n) => {
    if (extra.has(n)) return false;
    if (known[n] !== undefined) return known[n] === 'histogram';
    const base = /^(.*)_(bucket|sum|count)$/.exec(n)?.[1];
    return !(base !== undefined && known[base] === 'histogram');
  });
}

function run(cmd: string, args: string[], input?: string): { status: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 60_000, input });
  if (r.error) throw r.error;
  return { status: r.status, out: r.stdout, err: r.stderr };
}


describe('deployment files', () => {
  let known: Record<string, string>;
  before(async () => {
    known = { ...(await defaultMetrics()), ...DAEMON_METRICS };
  });

  describe('metric name extraction', () => {
    it('finds series in PromQL and leaves out functions, labels, keywords, durations and Grafana variables', () => {
      assert.deepEqual(
        promqlMetricNames(
          'histogram_quantile(0.99, sum by (le, key) (rate(ocsp_hsm_sign_duration_seconds_bucket{job=~"$job",key="a b"}[$__rate_interval])))' +
            ' / ignoring(x) group_left(key) up offset 5m and on(instance) time() - foo:bar > 2 * 3600 unless {__name__="baz"} > bool 1e3',
        ).sort(),
        ['baz', 'foo:bar', 'ocsp_hsm_sign_duration_seconds_bucket', 'up'],
      );
      assert.deepEqual(grafanaVariableMetricNames('label_values(ocsp_requests_total{job=~"$job"}, instance)'), ['ocsp_requests_total']);
    });

    it('tells a misspelt metric and a histogram read without its _bucket suffix from known ones', () => {
      assert.deepEqual(unknownNames(['ocsp_requests_total', 'ocsp_request_total', 'ocsp_request_duration_seconds_bucket'], known), ['ocsp_request_total']);
      assert.deepEqual(unknownNames(['ocsp_request_duration_seconds', 'process_cpu_seconds_total'], known), ['ocsp_request_duration_seconds']);
    });
  });

  describe('Prometheus alert rules', () => {
    const rules = () =>
      (parse(readFileSync(ALERTS, 'utf8')) as { groups: { rules: Record<string, any>[] }[] }).groups.flatMap((g) => g.rules);

    it('pass `promtool check rules`', () => {
      const r = run('promtool', ['check', 'rules', ALERTS]);
      assert.equal(r.status, 0, r.out + r.err);
      assert.match(r.out, /SUCCESS: \d+ rules found/);
    });

    it('fire as their unit tests say (`promtool test rules`)', () => {
      const r = run('promtool', ['test', 'rules', join(CONFIG, 'prometheus-alerts.test.yml')]);
      assert.equal(r.status, 0, r.out + r.err);
    });

    it('read only metrics the daemon exports', () => {
      for (const rule of rules()) {
        const names = promqlMetricNames(String(rule.expr));
        assert.ok(names.length > 0, `${rule.alert}: no metric found in ${rule.expr}`);
        assert.deepEqual(unknownNames(names, known, PROMETHEUS_SERIES), [], `${rule.alert}: unknown metric in ${rule.expr}`);
      }
    });

    it('cover the alerts operators asked for, each with a severity, a summary and a description', () => {
      const byName = new Map(rules().map((r) => [r.alert as string, r]));
      for (const [alert, metric] of [
        ['OcspHsmNearCeiling', 'ocsp_hsm_limiter_max_concurrent'],
        ['OcspHsmQueueFilling', 'ocsp_hsm_limiter_queue_depth'],
        ['OcspTryLaterRate', 'ocsp_requests_total'],
        ['OcspHsmErrors', 'ocsp_hsm_errors_total'],
        ['OcspStoredResponsesNearExpiry', 'ocsp_stored_responses_earliest_next_update_seconds'],
        ['OcspStoredResponsesDuePilingUp', 'ocsp_stored_responses_due'],
        ['OcspHsmTokenNotReady', 'ocsp_hsm_token_ready'],
        ['OcspPreSignerNotRunning', 'ocsp_presigner_last_run_timestamp_seconds'],
        ['OcspIndexImportFailing', 'ocsp_index_import_failing'],
        ['OcspLeaseNotHeld', 'ocsp_lease_held'],
        ['OcspSignerCertificateUnusable', 'ocsp_signer_usable'],
        ['OcspSignerCertificateExpiringSoon', 'ocsp_signer_certificate_expiry_seconds'],
        ['OcspCaCertificateExpiringSoon', 'ocsp_ca_certificate_expiry_seconds'],
        ['OcspStoreDown', 'ocsp_store_up'],
        ['OcspStoredResponsesPastUpdateTime', 'ocsp_stored_responses_past_update_time'],
        ['OcspCertificatesUnknownPastDeadline', 'ocsp_certificates_unknown_past_deadline_total'],
      ]) {
        assert.ok(byName.get(alert!)?.expr.includes(metric), `${alert} reads ${metric}`);
      }
      assert.equal(byName.get('OcspHsmTokenNotReady')!.for, '1m');
      for (const rule of rules()) {
        assert.match(String(rule.labels?.severity), /^(critical|warning)$/, `${rule.alert}: severity`);
        assert.ok(String(rule.annotations?.summary ?? '').length > 10, `${rule.alert}: summary`);
        assert.ok(String(rule.annotations?.description ?? '').length > 40, `${rule.alert}: description`);
      }
    });
  });

  describe('Grafana dashboard', () => {
    const dash = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
    const panels = dashboardPanels(dash);
    const exprs = () => panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: String(t.expr ?? '') })));

    it('is a schemaVersion 36+ dashboard with datasource, job and instance variables', () => {
      assert.ok(dash.schemaVersion >= 36, `schemaVersion ${dash.schemaVersion}`);
      const vars = new Map<string, any>(dash.templating.list.map((v: any) => [v.name, v]));
      assert.equal(vars.get('datasource')?.type, 'datasource');
      assert.equal(vars.get('datasource')?.query, 'prometheus');
      for (const name of ['job', 'instance']) {
        assert.equal(vars.get(name)?.type, 'query', name);
        assert.equal(vars.get(name)?.datasource?.uid, '${datasource}', name);
      }
      assert.equal(new Set(dash.panels.map((p: { id: number }) => p.id)).size, dash.panels.length, 'panel ids are unique');
    });

    it('every panel has the datasource variable and at least one query, filtered by job and instance', () => {
      assert.ok(panels.length >= 20, `${panels.length} panels`);
      for (const p of panels) {
        assert.deepEqual(p.datasource, { type: 'prometheus', uid: '${datasource}' }, `${p.title}: datasource`);
        assert.ok((p.targets ?? []).length > 0, `${p.title}: no target`);
        for (const t of p.targets!) {
          assert.ok(t.refId, `${p.title}: refId`);
          for (const name of promqlMetricNames(String(t.expr ?? ''))) {
            assert.ok(t.expr!.includes(`${name}{job=~"$job",instance=~"$instance"`), `${p.title}: ${name} not filtered by $job/$instance`);
          }
        }
      }
    });

    it('reads only metrics the daemon exports, and shows every one of them', () => {
      const used = new Set<string>();
      for (const { panel, expr } of exprs()) {
        const names = promqlMetricNames(expr);
        assert.ok(names.length > 0, `${panel}: no metric in ${expr}`);
        assert.deepEqual(unknownNames(names, known), [], `${panel}: unknown metric in ${expr}`);
        for (const n of names) used.add(n.replace(/_(bucket|sum|count)$/, ''));
      }
      for (const v of dash.templating.list) {
        const q = typeof v.query === 'string' ? v.query : v.query?.query;
        if (v.type === 'query') assert.deepEqual(unknownNames(grafanaVariableMetricNames(q), known), [], `variable ${v.name}`);
      }
      assert.deepEqual(Object.keys(DAEMON_METRICS).filter((n) => !used.has(n)), [], 'metrics without a panel');
    });

    it('queries are valid PromQL (`promtool check rules` on them as recording rules)', () => {
      const subst = (e: string) => e.replace(/\$__rate_interval|\$__interval|\$__range/g, '5m').replace(/\$(job|instance)/g, '.*');
      const file = join(tempDir('dashboard-rules'), 'dashboard.rules.yml');
      const rules = exprs().map((e, i) => ({ record: `dashboard:query_${i}`, expr: subst(e.expr) }));
      writeFileSync(file, stringify({ groups: [{ name: 'dashboard', rules }] }));
      const r = run('promtool', ['check', 'rules', file]);
      assert.equal(r.status, 0, r.out + r.err);
      assert.match(r.out, new RegExp(`SUCCESS: ${rules.length} rules found`));
    });
  });

  describe('systemd unit', () => {
    const unit = readFileSync(UNIT, 'utf8');
    const directives = (key: string) => [...unit.matchAll(new RegExp(`^${key}=(.*)$`, 'gm'))].map((m) => m[1]!.trim());

    /** `systemd-analyze verify` on a copy whose ExecStart is this checkout's bin/ocsp-hsm (it checks the file exists). */
    const verify = (text: string) => {
      const file = join(tempDir('unit'), 'ocsp-hsm.service');
      writeFileSync(file, text.replace(/^ExecStart=\/opt\/ocsp-hsm\//m, `ExecStart=${ROOT}/`));
      return { ...run('systemd-analyze', ['verify', '--man=no', file]), file };
    };

    it('passes `systemd-analyze verify` without a warning (and the check sees a broken unit)', () => {
      const r = verify(unit);
      assert.equal(r.status, 0, r.err);
      assert.equal(r.err.trim(), '', 'no warning');
      const broken = verify(unit.replace(/^ProtectSystem=strict$/m, 'ProtectSystem=stricter'));
      assert.match(broken.err, /ProtectSystem|protect system/);
    });

    it('is sandboxed: `systemd-analyze security` rates its exposure 2.5 or lower', () => {
      const { file } = verify(unit);
      const r = run('systemd-analyze', ['security', '--offline=yes', '--threshold=25', file]);
      const level = /Overall exposure level for [^:]+: ([\d.]+)/.exec(r.out)?.[1];
      assert.ok(level !== undefined, r.out + r.err);
      assert.ok(Number(level) <= 2.5, `exposure ${level}`);
      assert.equal(r.status, 0, r.err);
    });

    it('runs serve as its own user, restarts on failure, reloads with SIGHUP, stops gracefully', () => {
      assert.deepEqual(directives('ExecStart'), ['/opt/ocsp-hsm/bin/ocsp-hsm serve --config /etc/ocsp-hsm/config.yaml']);
      assert.deepEqual(directives('ExecReload'), ['/bin/kill -HUP $MAINPID']);
      assert.deepEqual(directives('User'), ['ocsp-hsm']);
      assert.deepEqual(directives('Restart'), ['on-failure']);
      assert.deepEqual(directives('KillSignal'), ['SIGTERM']);
      const stop = /^(\d+)(s|min)$/.exec(directives('TimeoutStopSec')[0] ?? '');
      assert.ok(stop && Number(stop[1]) * (stop[2] === 'min' ? 60 : 1) >= 60, 'TimeoutStopSec of a minute or more');
      for (const [key, value] of [
        ['ProtectSystem', 'strict'], ['NoNewPrivileges', 'yes'], ['PrivateTmp', 'yes'], ['ProtectHome', 'yes'], ['StateDirectory', 'ocsp-hsm'],
      ]) {
        assert.deepEqual(directives(key!), [value], key);
      }
      assert.deepEqual(directives('MemoryDenyWriteExecute'), [], "V8's JIT needs executable memory");
    });

    it('never restarts after bad arguments or a refused or locked PIN: the CLI\'s exit codes, parsed by verify', () => {
      const codes = directives('RestartPreventExitStatus').flatMap((v) => v.split(/\s+/)).map(Number);
      assert.deepEqual(codes.sort(), [EXIT_USAGE, EXIT_PIN_REFUSED, EXIT_PIN_LOCKED].sort());
      // verify reads the directive: a value it cannot parse is reported (and would be ignored by systemd).
      const broken = verify(unit.replace(/^RestartPreventExitStatus=.*$/m, 'RestartPreventExitStatus=2 PIN 4'));
      assert.match(broken.err, /Failed to parse value, ignoring: PIN/);
    });

    it('hands the PIN over as a systemd credential, which the example config reads', () => {
      assert.deepEqual(directives('LoadCredential'), ['token-pin:/etc/ocsp-hsm/token-pin']);
      assert.deepEqual(directives('Environment'), [], 'no environment (no PIN there)');
      assert.deepEqual(directives('EnvironmentFile'), []);
      const example = parse(readFileSync(join(CONFIG, 'ocsp-hsm.example.yaml'), 'utf8')) as { tokens: { pin: unknown }[]; dataDir: string };
      assert.deepEqual(example.tokens[0]!.pin, { file: '/run/credentials/ocsp-hsm.service/token-pin' });
      assert.equal(example.dataDir, '/var/lib/ocsp-hsm', 'dataDir is the unit StateDirectory');
    });
  });

  describe('a running responder', () => {
    let pki: TestPki;
    let ca: TestCa;
    let responder: Responder;
    let scrape: string;

    before(async () => {
      pki = createTestPki([{ name: 'alpha', caKey: 'ec-p256', responderKey: 'ec-p256' }]);
      ca = pki.cas[0]!;
      // Pre-production and the pre-signer on, so their metrics exist too.
      const config = variantConfig(pki, 'metrics', (c) => {
        c.defaults = { ...c.defaults, validity: '1h', preProduction: { enabled: true } };
        c.preSigner = { interval: '1h' };
      });
      responder = await startResponder(pki, { config });
      for (const extra of [[], ['-sha256'], ['-nonce'], []]) {
        assert.match(opensslQuery(ca, responder.url, [ca.good.file, ca.revoked.file], extra), /Response verify OK/);
        assert.match(opensslQuery(ca, responder.url, [ca.good.file], extra), /Response verify OK/);
      }
      assert.match(opensslQuery(ca, responder.url, [ca.unissued.file]), /: unknown/);
      const res = await fetch(responder.url + '/metrics', { signal: AbortSignal.timeout(5000) });
      assert.equal(res.status, 200);
      scrape = await res.text();
    });
    after(async () => {
      assert.equal(await responder?.stop(), 0, responder?.output());
    });

    it('/metrics passes `promtool check metrics`', () => {
      const r = run('promtool', ['check', 'metrics'], scrape);
      assert.equal(r.status, 0, `${r.out}${r.err}`);
    });

    it('/metrics exports every metric of the list and every default metric the dashboard reads, with its type', () => {
      const types = new Map([...scrape.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1]!, m[2]!]));
      const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8'));
      const read = dashboardPanels(dashboard).flatMap((p) => (p.targets ?? []).flatMap((t) => promqlMetricNames(String(t.expr))));
      const want = new Map<string, string>(Object.entries(DAEMON_METRICS).filter(([n]) => !ONLY_WITH_WORKERS_OR_PUBLISHING.has(n)));
      for (const name of read.map((n) => n.replace(/_(bucket|sum|count)$/, ''))) {
        if (!want.has(name) && !ONLY_WITH_WORKERS_OR_PUBLISHING.has(name)) want.set(name, known[name]!);
      }
      const wrong = [...want].filter(([name, type]) => types.get(name) !== type);
      assert.deepEqual(wrong.map(([n, t]) => `${n}: ${types.get(n) ?? 'missing'}, want ${t}`), []);
    });
  });
});
