// Shipped alert rules and dashboards: promtool accepts the rules and their unit tests pass, every
// metric they query is one the code really exports, and the chart renders them.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { operatorMetrics } from '../../operator/metrics.ts';
import { createPollMetrics } from '../../runtime/flow/sources/http-poll-metrics.ts';
import { createReconMetrics } from '../../runtime/reconcile/metrics.ts';
import { createFlowMetrics } from '../../runtime/telemetry/metrics.ts';
import { repoPath, toolPath } from '../harness/tools.ts';

const run = promisify(execFile);
const files = repoPath('charts/tally/files');

async function exportedNames(): Promise<Set<string>> {
  const registries = [
    createFlowMetrics({ flow: 'ns/f', channel: 'c' }, { processMetrics: false }).registry,
    createReconMetrics('ns/p', { processMetrics: false }).registry,
    operatorMetrics().registry,
  ];
  const poll = new Registry();
  createPollMetrics(poll, { flow: 'ns/f', channel: 'c' }, () => undefined);
  registries.push(poll);
  const names = new Set<string>();
  for (const r of registries) {
    for (const m of await r.getMetricsAsJSON()) {
      names.add(m.name);
      if (String(m.type) === 'histogram')
        for (const s of ['_bucket', '_count', '_sum']) names.add(m.name + s);
    }
  }
  return names;
}

describe('alert rules and dashboards', () => {
  it('pass promtool check rules and promtool test rules', async () => {
    const check = await run(toolPath('promtool'), ['check', 'rules', 'prometheus-rules.yaml'], {
      cwd: files,
    });
    expect(check.stdout).toContain('SUCCESS: 7 rules found');
    const test = await run(toolPath('promtool'), ['test', 'rules', 'prometheus-rules.test.yaml'], {
      cwd: files,
    });
    expect(test.stdout).toContain('SUCCESS');
  });

  it('query only metrics the code exports', async () => {
    const exported = await exportedNames();
    for (const file of ['prometheus-rules.yaml', 'dashboard-flows.json', 'dashboard-reconciliation.json']) {
      const used = new Set(readFileSync(`${files}/${file}`, 'utf8').match(/tally_[a-z_]+/g) ?? []);
      // names in alert descriptions that are not metrics
      const unknown = [...used].filter((n) => !exported.has(n) && !n.endsWith('_'));
      expect(unknown, file).toEqual([]);
    }
  });

  it('are rendered by the chart when enabled', async () => {
    const { stdout } = await run(toolPath('helm'), [
      'template',
      'tally',
      repoPath('charts/tally'),
      '--set',
      'prometheusRule.enabled=true',
      '--set',
      'grafanaDashboards.enabled=true',
      '--show-only',
      'templates/observability.yaml',
    ]);
    const docs = yaml.loadAll(stdout) as {
      kind: string;
      spec?: { groups: unknown[] };
      data?: Record<string, string>;
    }[];
    expect(docs.find((d) => d.kind === 'PrometheusRule')?.spec?.groups).toHaveLength(3);
    const cm = docs.find((d) => d.kind === 'ConfigMap')!;
    expect(JSON.parse(cm.data!['tally-flows.json']!).uid).toBe('tally-flows');
    expect(JSON.parse(cm.data!['tally-reconciliation.json']!).panels.length).toBeGreaterThan(3);
  });
});
