import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    name: '@tessera/kernels-webgpu',
    root: import.meta.dirname,
    include: ['test/**/*.test.ts'],
    setupFiles: ['../../tools/test-setup.ts'],
    // Tests import the built packages (dist): exactly what a user installs.
    server: { deps: { external: [/\/dist\//, /node_modules/] } },
    testTimeout: 120_000,
    pool: 'forks',
  },
});
