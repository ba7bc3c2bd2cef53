// The engine seam for backend packages: the full tfjs-core API, from the single
// engine instance that tensor-core owns. Backend builds rewrite
// `@tensorflow/tfjs-core` imports to this entry point.
import './engine.js';

export * from '@tensorflow/tfjs-core';
