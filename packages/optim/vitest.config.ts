import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/optim', import.meta.dirname);
