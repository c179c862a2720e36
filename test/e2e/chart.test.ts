// The Helm chart: it lints, renders, and every rendered object passes server-side dry-run on the
// real apiserver (the CRDs come from the chart's crds/ folder, identical to crds/).
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import * as yaml from 'js-yaml';
import { describe, expect, inject, it } from 'vitest';
import { runKubectl } from '../harness/kubectl.ts';
import { repoPath, toolPath } from '../harness/tools.ts';
import { helmTemplate } from './support/helm.ts';

const admin = { kubeconfig: inject('adminKubeconfig') };

describe('helm chart', () => {
  it('passes helm lint', async () => {
    const { stdout } = await promisify(execFile)(toolPath('helm'), ['lint', repoPath('charts/tally')]);
    expect(stdout).toContain('0 chart(s) failed');
  });

  it('renders objects the apiserver accepts', async () => {
    const ns = `chart-${randomBytes(3).toString('hex')}`;
    expect((await runKubectl(['create', 'namespace', ns], admin)).code).toBe(0);
    const docs = await helmTemplate(undefined, ns);
    expect(docs.map((d) => d.kind).sort()).toEqual([
      'ClusterRole',
      'ClusterRoleBinding',
      'Deployment',
      'Service',
      'ServiceAccount',
    ]);
    const r = await runKubectl(['apply', '--dry-run=server', '-f', '-'], {
      ...admin,
      input: docs.map((d) => yaml.dump(d)).join('---\n'),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const deployment = docs.find((d) => d.kind === 'Deployment') as unknown as {
      spec: { template: { spec: { containers: { image: string; args: string[] }[] } } };
    };
    const c = deployment.spec.template.spec.containers[0]!;
    // The operator stamps its own image into the workers it renders.
    expect(c.args).toContain(`--image=${c.image}`);
  });
});
