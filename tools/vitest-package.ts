import { defineConfig } from 'vitest/config';

/**
 * The test setup every package shares: its own test/ folder, the tfjs IS_TEST flag, and
 * the built packages (dist) imported as a user installs them.
 */
export function packageTestConfig(
  name: string,
  root: string,
  overrides: { testTimeout?: number; hookTimeout?: number } = {},
) {
  return defineConfig({
    test: {
      name,
      root,
      include: ['test/**/*.test.ts'],
      setupFiles: ['../../tools/test-setup.ts'],
      server: { deps: { external: [/\/dist\//, /node_modules/] } },
      testTimeout: overrides.testTimeout ?? 120_000,
      ...(overrides.hookTimeout ? { hookTimeout: overrides.hookTimeout } : {}),
      pool: 'forks',
    },
  });
}
