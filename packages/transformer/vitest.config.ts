import { packageTestConfig } from '../../tools/vitest-package.js';

export default packageTestConfig('@tessera/transformer', import.meta.dirname);
