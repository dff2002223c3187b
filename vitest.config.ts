import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Process-level tests spawn agents, Redis and a browser: two cores, so two files at a time.
    maxWorkers: 2,
  },
});
