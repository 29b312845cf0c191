import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    setupFiles: ['tests/setup/event_loop_guard.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
    // two test files run at once on 2 cores: one wasm thread each unless MUCODEC_THREADS asks (tests/threads.test.ts
    // checks that 2 threads give the same bytes)
    env: { MUCODEC_THREADS: process.env.MUCODEC_THREADS ?? '1' },
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
