import '@tessera/kernels-cpu';
import { describeConformance } from '../../../tools/testing/conformance.js';

// The conformance suite, instantiated for "cpu": the reference checked against itself
// (levels 2 and 4 catch nondeterminism and leaks), tfjs-core's shared suite, and the
// PyTorch fixtures. A case that fails fails here, by name.
await describeConformance({ backend: 'cpu', requireAllLevels: true });
