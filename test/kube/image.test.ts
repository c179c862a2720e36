// The Tally image (Dockerfile, built by images/build.sh on the local stand-ins of the official base
// images) runs as any non-root uid on a read-only root filesystem: --help, the operator starting
// against a real apiserver and NATS, and a flow worker starting from a mounted WorkerConfig.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as yaml from 'js-yaml';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { makeTempDir, removeTempDir } from '../harness/cleanup.ts';
import { runCommand } from '../harness/cluster-exec.ts';
import { type ControlPlane, startControlPlane } from '../harness/control-plane.ts';
import { installCrds } from '../harness/crds.ts';
import {
  type BuiltImages,
  buildImages,
  type Dockerd,
  ensureDockerd,
  TALLY_DOCKER_IMAGE,
} from '../harness/images.ts';
import { type NatsServerHandle, startNatsServer } from '../harness/nats.ts';
import { freePort } from '../harness/ports.ts';
import { httpGet, waitForHttp } from '../harness/process.ts';
import { type Container, dockerRunOnce, LOCKED_DOWN, startContainer } from './support/docker.ts';
import { renderExampleFlow } from './support/flows.ts';

const skip = inject('kubeSkip');

describe.skipIf(skip !== '')('the Tally image', () => {
  let docker: Dockerd | undefined;
  let images: BuiltImages;
  let dir: string;
  const containers: Container[] = [];

  beforeAll(async () => {
    docker = await ensureDockerd();
    images = await buildImages();
    dir = makeTempDir('kube-image');
    // World-readable: the containers run as uid 1000 and read the files mounted from here.
    chmodSync(dir, 0o755);
  }, 1_200_000);

  afterAll(async () => {
    for (const c of containers) await c.stop(5000);
    if (dir) removeTempDir(dir);
    await docker?.stop();
  });

  it('is non-root by default, with the tally entrypoint', async () => {
    const r = await runCommand('docker', [
      'image',
      'inspect',
      TALLY_DOCKER_IMAGE,
      '--format',
      '{{json .Config}}',
    ]);
    expect(r.code).toBe(0);
    const config = JSON.parse(r.stdout) as { User: string; Entrypoint: string[]; Cmd: string[] };
    expect(config.User).toBe('65532:65532');
    expect(config.Entrypoint).toEqual(['node', '/app/bin/tally.mjs']);
    expect(images.tally.image).toBe('docker.io/library/tally:local');
  });

  it('runs tally --help and tally operator --help as uid 1000 on a read-only root', async () => {
    const help = await dockerRunOnce([...LOCKED_DOWN, '--network', 'none'], TALLY_DOCKER_IMAGE, ['--help']);
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: tally <command>/);
    const operator = await dockerRunOnce([...LOCKED_DOWN, '--network', 'none'], TALLY_DOCKER_IMAGE, [
      'operator',
      '--help',
    ]);
    expect(operator.code).toBe(0);
    expect(operator.stdout).toMatch(/^Usage: tally operator/);
    const probe = await dockerRunOnce(
      [...LOCKED_DOWN, '--network', 'none', '--entrypoint', 'node'],
      TALLY_DOCKER_IMAGE,
      [
        '-e',
        "const fs=require('node:fs');for(const p of ['/app/x','/tmp/x']){try{fs.writeFileSync(p,'x');console.log(p,'writable')}catch(e){console.log(p,e.code)}}console.log('uid',process.getuid())",
      ],
    );
    expect(probe.stdout).toContain('/app/x EROFS');
    expect(probe.stdout).toContain('/tmp/x EROFS');
    expect(probe.stdout).toContain('uid 1000');
  });

  describe('against loopback servers (--network host)', () => {
    let cp: ControlPlane;
    let nats: NatsServerHandle;

    beforeAll(async () => {
      [cp, nats] = await Promise.all([startControlPlane(), startNatsServer()]);
      await installCrds(cp);
    }, 180_000);

    afterAll(async () => {
      await Promise.all([cp?.stop(), nats?.stop()]);
    });

    it('starts the operator: /readyz answers, SIGTERM stops it with exit code 0', async () => {
      const kubeconfig = join(dir, 'operator.kubeconfig');
      writeFileSync(kubeconfig, readFileSync(cp.adminKubeconfig));
      chmodSync(kubeconfig, 0o644);
      const port = await freePort();
      const c = startContainer(
        dir,
        [...LOCKED_DOWN, '--network', 'host', '-v', `${kubeconfig}:/etc/tally/kubeconfig:ro`],
        TALLY_DOCKER_IMAGE,
        [
          'operator',
          '--kubeconfig=/etc/tally/kubeconfig',
          `--nats-url=${nats.url}`,
          `--image=${TALLY_DOCKER_IMAGE}`,
          `--metrics-port=${port}`,
          '--metrics-host=127.0.0.1',
        ],
      );
      containers.push(c);
      await waitForHttp(`http://127.0.0.1:${port}/readyz`, { children: [c.child], timeoutMs: 60_000 });
      expect((await httpGet(`http://127.0.0.1:${port}/metrics`)).body).toContain('tally_');
      const exit = await c.stop();
      expect(exit).toMatchObject({ code: 0 });
    });

    it('starts a flow worker from a mounted WorkerConfig: ready once NATS has its streams', async () => {
      const flow = await renderExampleFlow('shopify-orders', {
        namespace: 'kube-image',
        natsServers: [nats.url],
      });
      await flow.provision();
      const configDir = join(dir, 'worker');
      mkdirSync(configDir, { mode: 0o755 });
      const file = join(configDir, 'worker.yaml');
      writeFileSync(file, yaml.dump(flow.config), { mode: 0o644 });
      const port = await freePort();
      const env = Object.entries({
        ...flow.env,
        TALLY_HTTP_HOST: '127.0.0.1',
        TALLY_HTTP_PORT: String(port),
      });
      const c = startContainer(
        dir,
        [
          ...LOCKED_DOWN,
          '--network',
          'host',
          '-v',
          `${configDir}:/etc/tally:ro`,
          ...env.flatMap(([k, v]) => ['-e', `${k}=${v}`]),
        ],
        TALLY_DOCKER_IMAGE,
        ['runtime', '--config', '/etc/tally/worker.yaml'],
      );
      containers.push(c);
      await waitForHttp(`http://127.0.0.1:${port}/readyz`, { children: [c.child], timeoutMs: 60_000 });
      const exit = await c.stop();
      expect(exit).toMatchObject({ code: 0 });
      expect(c.child.logTail(200)).toContain('SIGTERM received; stopping gracefully');
    });
  });
});
