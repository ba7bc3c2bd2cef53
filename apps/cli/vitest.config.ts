import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/cli', import.meta.dirname);
