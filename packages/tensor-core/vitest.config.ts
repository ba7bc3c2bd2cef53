import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/tensor-core', import.meta.dirname);
