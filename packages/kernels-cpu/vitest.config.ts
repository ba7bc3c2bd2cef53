import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/kernels-cpu', import.meta.dirname);
