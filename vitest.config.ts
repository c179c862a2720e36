import { defineConfig } from 'vitest/config';

// Four tiers (DESIGN.md "Tests, in tiers"): unit tests live next to the code; integration
// tests start a real nats-server per file; e2e tests share one real control plane started
// in a global setup and run one file at a time (2 cores, one apiserver); kube tests run the
// image and a real single-node cluster.
export default defineConfig({
  test: {
    reporters: ['default', './test/summary-reporter.ts'],
    projects: [
      {
        test: {
          name: 'unit',
          include: [
            '{api,operator,runtime,cli,simulators}/**/*.test.ts',
            'test/unit/**/*.test.ts',
            'test/conformance/**/*.test.ts',
          ],
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          globalSetup: ['test/e2e/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 180_000,
          hookTimeout: 180_000,
        },
      },
      {
        // Real Kubernetes (docs/kubernetes-testing.md): the Tally image under docker, and a real
        // single-node cluster (kubelet, containerd, kube-proxy) started by the test files; root
        // only, one file at a time, in a group of its own (groupOrder: never beside another tier's
        // tests). Skipped, with the reason printed, where it cannot run; TALLY_KUBE=1 makes that an
        // error, TALLY_KUBE=0 skips it.
        test: {
          name: 'kube',
          include: ['test/kube/**/*.test.ts'],
          globalSetup: ['test/kube/global-setup.ts'],
          fileParallelism: false,
          sequence: { groupOrder: 1 },
          testTimeout: 300_000,
          hookTimeout: 1_200_000,
        },
      },
    ],
  },
});
