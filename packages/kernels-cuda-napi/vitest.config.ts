import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/kernels-cuda-napi', import.meta.dirname);
