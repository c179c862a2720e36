import { defineConfig } from 'vitest/config';

// Three tiers (DESIGN.md "Tests, in tiers"): unit tests live next to the code; integration
// tests start a real nats-server per file; e2e tests share one real control plane started
// in a global setup and run one file at a time (2 cores, one apiserver).
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
    ],
  },
});
