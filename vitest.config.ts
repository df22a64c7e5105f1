import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['spec/**/*.test.ts'],
    globalSetup: ['spec/setup/buildCli.ts'],
    reporters: ['default', './spec/setup/summaryReporter.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // Two cores: run test files on two workers at most.
    poolOptions: { threads: { maxThreads: 2, minThreads: 1 }, forks: { maxForks: 2, minForks: 1 } },
  },
});
