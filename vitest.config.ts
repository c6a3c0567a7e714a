import { defineConfig } from 'vitest/config';

// Two projects: `unit` (fast, no root needed, beside the code) and `e2e` (real runc, real
// namespaces, the lab; needs root). Both run under `make test`.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['{proto,pki,common,manager,scheduler,agent,cli,deploy,bench}/**/*.test.ts', 'test/unit/**/*.test.ts', 'test/sim/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'dist/**', '**/*.e2e.test.ts'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['**/*.e2e.test.ts', 'test/e2e/**/*.test.ts', 'test/compat/**/*.test.ts'],
          exclude: ['**/node_modules/**', 'dist/**'],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          // Real hosts, real containers: files run one at a time so two labs never compete for
          // the two cores and their timing stays meaningful.
          fileParallelism: false,
        },
      },
    ],
  },
});
