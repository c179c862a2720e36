// The validation rules against credentials in URLs and replay gaps, as the apiserver applies them:
// the generated CRDs (CEL rules) on a real etcd + kube-apiserver, resources tried with
// --dry-run=server. `tally validate` applies the same rules offline (api/validate.test.ts).
import { readFileSync } from 'node:fs';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import { repoPath } from '../harness/tools.ts';

let cp: ControlPlane | undefined;
const ns = 'security';

beforeAll(async () => {
  cp = await startControlPlane({ log: () => {} });
  await installCrds(cp);
  const r = await cp.kubectl(['create', 'namespace', ns]);
  expect(r.code, r.stderr).toBe(0);
}, 150_000);

afterAll(async () => {
  await cp?.stop();
}, 60_000);

// biome-ignore lint/suspicious/noExplicitAny: example documents edited in place
type Doc = { metadata: { name: string }; spec: Record<string, any> };
const example = (file: string) => yaml.load(readFileSync(repoPath('examples', file), 'utf8')) as Doc;

async function dryRun(doc: Doc) {
  return cp!.kubectl(['apply', '--dry-run=server', '-n', ns, '-f', '-'], { input: JSON.stringify(doc) });
}

describe('IntegrationFlow CEL rules on the apiserver', () => {
  it('refuses credentials in a sink URL, an update URL, a token URL and an httpPoll URL, without echoing them', async () => {
    const sink = example('shopify-orders/flow.yaml');
    sink.spec.sinks[0].http.url = 'https://tally:hunter2@erp.example.com/api/sales-orders';
    const update = example('netsuite-round-trip/orders-to-netsuite.yaml');
    update.spec.sinks[0].http.update.url = 'https://tally:hunter2@erp.example.com/salesOrder/{id}';
    const token = example('netsuite-round-trip/orders-to-netsuite.yaml');
    token.spec.sinks[0].http.auth.tokenUrl = 'https://client:hunter2@erp.example.com/token';
    const poll = example('shopify-orders/flow.yaml');
    poll.spec.source = {
      type: 'httpPoll',
      httpPoll: { url: 'https://u:hunter2@erp.example.com/api/orders' },
    };
    const cases: [Doc, string][] = [
      [sink, 'spec.sinks[0].http.url'],
      [update, 'spec.sinks[0].http.update.url'],
      [token, 'spec.sinks[0].http.auth.tokenUrl'],
      [poll, 'spec.source.httpPoll.url'],
    ];
    for (const [doc, path] of cases) {
      const r = await dryRun(doc);
      expect(r.code, `${path}: ${r.stdout}`).not.toBe(0);
      expect(r.stderr).toContain(`${path}: Forbidden: must not carry credentials (user:password@host)`);
      expect(r.stderr).toContain('put them in a Secret and reference it from auth');
      expect(r.stderr).not.toContain('hunter2');
    }
  });

  it('refuses a signature tolerance longer than the duplicate window, defaults applied first', async () => {
    const longer = example('netsuite-round-trip/netsuite-shipments.yaml');
    longer.spec.source.webhook.signature.tolerance = '10m';
    const shorterWindow = example('netsuite-round-trip/netsuite-shipments.yaml');
    shorterWindow.spec.stream = { duplicateWindow: '2m' }; // the default tolerance is 5m
    for (const doc of [longer, shorterWindow]) {
      const r = await dryRun(doc);
      expect(r.code, r.stdout).not.toBe(0);
      expect(r.stderr).toContain('spec.source.webhook.signature.tolerance: Invalid value');
      expect(r.stderr).toContain('must not be longer than stream.duplicateWindow');
    }
  });

  it('accepts the examples as they are: the default tolerance fits the default duplicate window', async () => {
    for (const file of ['netsuite-round-trip/netsuite-shipments.yaml', 'shopify-orders/flow.yaml']) {
      const r = await dryRun(example(file));
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
    }
    const applied = await cp!.kubectl([
      'apply',
      '--dry-run=server',
      '-n',
      ns,
      '-o',
      'jsonpath={.spec.source.webhook.signature.tolerance} {.spec.stream.duplicateWindow}',
      '-f',
      repoPath('examples/netsuite-round-trip/netsuite-shipments.yaml'),
    ]);
    expect(applied.stdout).toBe('5m 5m');
  });
});
