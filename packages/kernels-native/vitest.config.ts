import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/kernels-native', import.meta.dirname);
