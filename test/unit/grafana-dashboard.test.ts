// The Grafana dashboard (deploy/grafana/atrium.json) queries only metrics the gateway exports: every
// PromQL expression parses (Prometheus's own grammar, @prometheus-io/lezer-promql), and each metric it
// selects is in the /metrics text of a real gateway (in-process, local backend, every optional feature
// on), so renaming a metric without the dashboard fails here.
import fs from 'node:fs';
import path from 'node:path';
import { parser } from '@prometheus-io/lezer-promql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ReferenceGateway, startReferenceGateway } from '../../src/server/api-doc.ts';

const DASHBOARD = path.join(import.meta.dirname, '../../deploy/grafana/atrium.json');

interface Target {
  expr?: string;
  datasource?: { type?: string; uid?: string };
}
interface Panel {
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  targets?: Target[];
  panels?: Panel[];
}
interface Dashboard {
  panels: Panel[];
  templating: { list: { name: string; type: string; query?: unknown }[] };
}

const dashboard = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Dashboard;

function panelsOf(list: Panel[]): Panel[] {
  return list.flatMap((p) => [p, ...panelsOf(p.panels ?? [])]);
}

const queries = panelsOf(dashboard.panels).flatMap((p) =>
  (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr ?? '' })),
);

/** Grafana's interval variables stand where PromQL wants a duration; the others sit inside strings. */
function asPromQL(expr: string): string {
  return expr.replace(/\$__(rate_interval|interval|range)\b/g, '5m');
}

/** The metric names an expression selects, or the syntax errors of the expression. */
function metricsOf(expr: string): { names: string[]; errors: string[] } {
  const text = asPromQL(expr);
  const names: string[] = [];
  const errors: string[] = [];
  parser.parse(text).iterate({
    enter(node) {
      if (node.type.isError)
        errors.push(`syntax error at ${node.from}: "${text.slice(node.from, node.from + 20)}"`);
      if (node.name === 'VectorSelector') {
        const id = node.node.getChild('Identifier');
        if (id) names.push(text.slice(id.from, id.to));
        else errors.push(`a selector without a metric name at ${node.from}`);
      }
    },
  });
  return { names, errors };
}

/** Every series name the exposition text can hold: a histogram's _bucket, _sum and _count too. */
function exportedNames(exposition: string): Set<string> {
  const out = new Set<string>();
  for (const m of exposition.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const [, name = '', type] = m;
    out.add(name);
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name + s);
    if (type === 'summary') for (const s of ['_sum', '_count']) out.add(name + s);
  }
  return out;
}

let ref: ReferenceGateway;
let exported: Set<string>;

beforeAll(async () => {
  ref = await startReferenceGateway();
  const r = await fetch(`${ref.gw.url}/metrics`);
  expect(r.status).toBe(200);
  exported = exportedNames(await r.text());
}, 120_000);

afterAll(async () => {
  await ref?.close();
});

describe('the Grafana dashboard', () => {
  it('reads its Prometheus from a data source variable', () => {
    const ds = dashboard.templating.list.find((v) => v.type === 'datasource');
    expect(ds?.query).toBe('prometheus');
    for (const p of panelsOf(dashboard.panels).filter((x) => x.type !== 'row')) {
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: `\${${ds?.name}}` });
      expect(p.targets?.length, p.title).toBeGreaterThan(0);
    }
  });

  it('parses every PromQL expression', () => {
    expect(queries.length).toBeGreaterThan(10);
    for (const q of queries) expect(metricsOf(q.expr).errors, `${q.panel}: ${q.expr}`).toEqual([]);
  });

  it('queries only metrics the gateway exports', () => {
    expect(exported.has('atrium_sessions')).toBe(true);
    const unknown = queries.flatMap((q) =>
      metricsOf(q.expr)
        .names.filter((n) => !exported.has(n))
        .map((n) => `${q.panel}: ${n}`),
    );
    expect(unknown).toEqual([]);
  });

  it('shows what operators watch', () => {
    const used = new Set(queries.flatMap((q) => metricsOf(q.expr).names));
    for (const name of [
      'atrium_sessions',
      'atrium_jobs',
      'atrium_scheduler_poll_duration_seconds_bucket',
      'atrium_scheduler_poll_failures_total',
      'atrium_proxy_requests_total',
      'atrium_proxy_open_websockets',
      'atrium_sse_clients',
      'atrium_event_loop_delay_seconds_bucket',
      'atrium_signins_total',
    ]) {
      expect(used, name).toContain(name);
    }
  });

  it('finds a misspelt metric (the check is not vacuous)', () => {
    const { names, errors } = metricsOf(
      'sum(rate(atrium_proxy_request_total{instance=~"$instance"}[$__rate_interval]))',
    );
    expect(errors).toEqual([]);
    expect(names).toEqual(['atrium_proxy_request_total']);
    expect(exported.has('atrium_proxy_request_total')).toBe(false);
    expect(metricsOf('sum(rate(atrium_x[5m]) by').errors.length).toBeGreaterThan(0);
  });
});
