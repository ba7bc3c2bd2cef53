import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/data', import.meta.dirname);
