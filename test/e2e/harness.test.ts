// Proves the e2e-tier harness: the shared control plane from global-setup.ts has a working admin,
// enforces RBAC on the non-admin user, and installs CRDs until Established.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../harness/cleanup.ts';
import { installCrds } from '../harness/crds.ts';
import { HarnessError, HarnessErrorCode } from '../harness/errors.ts';
import { runKubectl } from '../harness/kubectl.ts';

const admin = { kubeconfig: inject('adminKubeconfig') };
const user = { kubeconfig: inject('userKubeconfig') };
const suffix = randomBytes(4).toString('hex');

describe('e2e control plane', () => {
  const tmp = makeTempDir('harness-test');
  afterAll(() => removeTempDir(tmp));

  it('serves on loopback https', () => {
    expect(inject('apiServerUrl')).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
  });

  it('lets the admin create a namespace', async () => {
    const ns = `harness-${suffix}`;
    const created = await runKubectl(['create', 'namespace', ns], admin);
    expect(created.stderr).toBe('');
    expect(created.code).toBe(0);
    const got = await runKubectl(['get', 'namespace', ns, '-o', 'jsonpath={.status.phase}'], admin);
    expect(got.stdout).toBe('Active');
    // No controller-manager runs, so a deleted namespace stays Terminating: do not wait.
    await runKubectl(['delete', 'namespace', ns, '--wait=false'], admin);
  });

  it('forbids the non-admin user to list secrets cluster-wide', async () => {
    const listed = await runKubectl(['get', 'secrets', '--all-namespaces'], user);
    expect(listed.code).not.toBe(0);
    expect(listed.stderr).toContain('Forbidden');
    expect(listed.stderr).toContain('User "tally-user" cannot list resource "secrets"');

    const userCan = await runKubectl(['auth', 'can-i', 'list', 'secrets', '--all-namespaces'], user);
    expect(userCan.stdout.trim()).toBe('no');
    expect(userCan.code).toBe(1);
    const adminCan = await runKubectl(['auth', 'can-i', 'list', 'secrets', '--all-namespaces'], admin);
    expect(adminCan.stdout.trim()).toBe('yes');
  });

  it('installs a CRD and waits until it is Established', async () => {
    const group = `harness${suffix}.tally.test`;
    const name = `widgets.${group}`;
    const dir = join(tmp, 'crds');
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name },
      spec: {
        group,
        scope: 'Namespaced',
        names: { plural: 'widgets', singular: 'widget', kind: 'Widget', listKind: 'WidgetList' },
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: {
              openAPIV3Schema: {
                type: 'object',
                properties: { spec: { type: 'object', properties: { size: { type: 'integer' } } } },
              },
            },
          },
        ],
      },
    };
    mkdirSync(dir);
    writeFileSync(join(dir, 'widget.yaml'), JSON.stringify(crd, null, 2));

    try {
      const names = await installCrds({ adminKubeconfig: admin.kubeconfig }, dir);
      expect(names).toEqual([name]);
      const status = await runKubectl(
        ['get', 'crd', name, '-o', 'jsonpath={.status.conditions[?(@.type=="Established")].status}'],
        admin,
      );
      expect(status.stdout).toBe('True');

      // The new kind is served right away.
      const widget = `{"apiVersion":"${group}/v1","kind":"Widget","metadata":{"name":"w1","namespace":"default"},"spec":{"size":3}}`;
      const applied = await runKubectl(['apply', '-f', '-'], { ...admin, input: widget });
      expect(applied.code).toBe(0);
      const size = await runKubectl(
        ['get', `widgets.${group}`, 'w1', '-n', 'default', '-o', 'jsonpath={.spec.size}'],
        admin,
      );
      expect(size.stdout).toBe('3');

      // Installing again is idempotent.
      expect(await installCrds({ adminKubeconfig: admin.kubeconfig }, dir)).toEqual([name]);
    } finally {
      await runKubectl(['delete', 'crd', name, '--wait=false'], admin);
    }
  });

  it('refuses a folder without manifests', async () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    const error = await installCrds({ adminKubeconfig: admin.kubeconfig }, empty).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HarnessError);
    expect((error as HarnessError).code).toBe(HarnessErrorCode.NoCrds);
  });
});
