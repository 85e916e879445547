import { defineConfig } from 'vitest/config';

// Two projects: `unit` (pure logic, fast, parallel) and `e2e` (real Slurm, Jupyter, Chromium; one file at a time).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          environment: 'node',
          // Some unit files use real sockets and child processes: on a loaded 2-core host (the end-to-end
          // lanes run beside them) vitest's 5 s default cut them off.
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          environment: 'node',
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 180_000,
          pool: 'forks',
        },
      },
    ],
  },
});
