import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/adapt', import.meta.dirname);
