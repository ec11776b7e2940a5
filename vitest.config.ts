import { defineConfig } from 'vitest/config';

// Tests run against the compiled packages (`pnpm test` builds first), the
// same JS the stack runs; process tests spawn real processes.
export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // Two cores, and many files start whole stacks or burn pCPU threads on
    // purpose (scheduler fairness, guests): run files one at a time so timing
    // assertions (restart within 2 s, CPU shares) measure xenbox, not contention.
    fileParallelism: false,
    pool: 'forks',
    // Under CI also write a JSON summary (.ci/run prints its counts).
    reporters: process.env.CI ? ['default', 'json'] : ['default'],
    outputFile: process.env.CI ? { json: 'test-results.json' } : undefined,
  },
});
