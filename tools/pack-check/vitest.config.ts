import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@tessera/pack-check',
    root: import.meta.dirname,
    include: ['test/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 600_000,
    pool: 'forks',
  },
});
