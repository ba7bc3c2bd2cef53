import { describeConformance } from '../../../tools/testing/conformance.js';

// The conformance suite, instantiated for "native" against the cpu reference. Level 1
// runs tfjs-core's shared suite in a child process, which registers the backend by
// importing the package.
await describeConformance({ backend: 'native', imports: ['@tessera/kernels-native'], requireAllLevels: true });
