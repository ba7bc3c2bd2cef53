import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/browser-demo', import.meta.dirname, { testTimeout: 300_000 });
