// The one place tfjs-core is loaded. Its ESM tree is bundled into this package's
// build together with the two side-effect modules that its Node main bundle lacks:
// every gradient, and the chained tensor methods (x.add(y)).
import '@tensorflow/tfjs-core/dist/index.js';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import '@tensorflow/tfjs-core/dist/public/chained_ops/register_all_chained_ops.js';
