import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/distributed', import.meta.dirname);
