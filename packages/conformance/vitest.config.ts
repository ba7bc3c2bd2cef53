import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@tessera/conformance',
    root: import.meta.dirname,
    include: ['test/**/*.test.ts'],
    setupFiles: ['../../tools/test-setup.ts'],
    // Tests import the built packages (dist): exactly what a user installs.
    server: { deps: { external: [/\/dist\//, /node_modules/] } },
    testTimeout: 180_000,
    hookTimeout: 300_000,
    pool: 'forks',
  },
});
