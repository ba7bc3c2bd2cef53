import { packageTestConfig } from '../../tools/vitest-package.js';

// The tfjs-core shared suite runs in child processes: longer limits.
export default packageTestConfig('@tessera/conformance', import.meta.dirname, {
  testTimeout: 180_000,
  hookTimeout: 300_000,
});
