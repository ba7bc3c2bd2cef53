import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/trainers', import.meta.dirname);
